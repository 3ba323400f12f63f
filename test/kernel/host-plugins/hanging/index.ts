/** Test-only: `start` never finishes. */
import { z } from 'zod';
import { definePlugin } from '../../../../daemon/plugin-api.js';

export default definePlugin({
  name: 'hanging',
  namespaces: ['hanging'],
  start: () => new Promise<never>(() => undefined),
  events: { 'hanging:x': { summary: 'Never reachable.', schema: z.object({}), handler: () => ({}) } },
});
