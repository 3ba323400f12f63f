/** Test-only stateful plugin whose snapshot() can be made to throw (flaky:set). */
import { z } from 'zod';
import { defineEvent, definePlugin } from '../../../../daemon/plugin-api.js';

let value: unknown = null;
let failSnapshot = false;

export default definePlugin({
  name: 'flaky',
  version: 1,
  namespaces: ['flaky'],
  snapshot() {
    if (failSnapshot) throw new Error('flaky snapshot failure');
    return { value };
  },
  restore(state: unknown) {
    value = (state as { value: unknown }).value;
  },
  events: {
    'flaky:set': defineEvent({
      summary: 'Set the value and whether snapshot() throws',
      schema: z.object({
        value: z.unknown().optional().describe('New value'),
        fail_snapshot: z.boolean().optional().describe('Make snapshot() throw'),
      }),
      handler: (d) => {
        if ('value' in d) value = d.value;
        if (d.fail_snapshot !== undefined) failSnapshot = d.fail_snapshot;
        return { value, fail_snapshot: failSnapshot };
      },
    }),
    'flaky:get': defineEvent({
      summary: 'The value',
      schema: z.object({}),
      handler: () => ({ value }),
    }),
  },
});
