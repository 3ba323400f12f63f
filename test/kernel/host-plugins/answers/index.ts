/** Test-only: events with response schemas, one answering within its schema and one outside it. */
import { z } from 'zod';
import { definePlugin } from '../../../../daemon/plugin-api.js';

const answer = z.object({ n: z.number().int() });

export default definePlugin({
  name: 'answers',
  namespaces: ['answers'],
  events: {
    'answers:good': {
      summary: 'Within its schema.',
      schema: z.object({}),
      response: answer,
      handler: () => ({ n: 1 }),
    },
    'answers:bad': {
      summary: 'Outside its schema.',
      schema: z.object({}),
      response: answer,
      handler: async () => ({ n: 'one' }),
    },
  },
});
