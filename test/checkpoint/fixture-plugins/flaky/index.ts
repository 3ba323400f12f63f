/** Test-only stateful plugin whose snapshot() can be made to throw (flaky:set). */
import { z } from 'zod';
import { definePlugin } from '../../../../daemon/plugin-api.js';

export default definePlugin({
  name: 'flaky',
  version: 1,
  namespaces: ['flaky'],
  start(ctx) {
    const from = ctx.restored as { value: unknown } | undefined;
    const value: unknown = from ? from.value : null;
    return { value, failSnapshot: false };
  },
  snapshot(flaky) {
    if (flaky.failSnapshot) throw new Error('flaky snapshot failure');
    return { value: flaky.value };
  },
  restore(flaky, state) {
    flaky.value = (state as { value: unknown }).value;
  },
  events: {
    'flaky:set': {
      summary: 'Set the value and whether snapshot() throws',
      schema: z.object({
        value: z.unknown().optional().describe('New value'),
        fail_snapshot: z.boolean().optional().describe('Make snapshot() throw'),
      }),
      handler: (d, flaky) => {
        if ('value' in d) flaky.value = d.value;
        if (d.fail_snapshot !== undefined) flaky.failSnapshot = d.fail_snapshot;
        return { value: flaky.value, fail_snapshot: flaky.failSnapshot };
      },
    },
    'flaky:get': {
      summary: 'The value',
      schema: z.object({}),
      handler: (_d, flaky) => ({ value: flaky.value }),
    },
  },
});
