import { z } from 'zod';
export default {
  name: 'broken_start',
  namespaces: ['broken_start'],
  events: { 'broken_start:hello': { summary: 'Never reachable.', schema: z.object({}), handler: () => ({}) } },
  start() {
    throw new Error('backend exploded at start');
  },
};
