import { z } from 'zod';
export default {
  name: 'cycle_b',
  namespaces: ['cycle_b'],
  dependsOn: ['cycle_a'],
  events: { 'cycle_b:x': { summary: 'x', schema: z.object({}), handler: () => ({}) } },
};
