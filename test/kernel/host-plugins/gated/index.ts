/** Test-only: `start` waits until the test opens the gate (globalThis.agentdTestGate), then returns its instance. */
import { z } from 'zod';
import { definePlugin } from '../../../../daemon/plugin-api.js';

const gate = (): Promise<void> =>
  (globalThis as { agentdTestGate?: Promise<void> }).agentdTestGate ?? Promise.resolve();

export default definePlugin({
  name: 'gated',
  namespaces: ['gated'],
  async start() {
    await gate();
    return { started_at: Date.now(), calls: 0 };
  },
  events: {
    'gated:ping': {
      summary: 'Answers with its instance.',
      schema: z.object({}),
      handler: (_d, gated) => ({ calls: ++gated.calls, started_at: gated.started_at }),
    },
  },
});
