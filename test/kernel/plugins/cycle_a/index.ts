import { z } from 'zod';
export default {
  name: 'cycle_a',
  namespaces: ['cycle_a'],
  dependsOn: ['cycle_b'],
  events: { 'cycle_a:x': { summary: 'x', schema: z.object({}), handler: () => ({}) } },
};
