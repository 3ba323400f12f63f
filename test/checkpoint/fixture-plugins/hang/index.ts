/** Test-only plugin whose stop() never finishes when HANG_STOP=1 (stands for a plugin stuck in shutdown). */
import { z } from 'zod';
import { definePlugin } from '../../../../daemon/plugin-api.js';

export default definePlugin({
  name: 'hang',
  namespaces: ['hang'],
  async stop() {
    if (process.env.HANG_STOP === '1') await new Promise(() => undefined);
  },
  events: {
    'hang:sleep': {
      summary: 'Answer after ms',
      schema: z.object({ ms: z.number().int().min(0).max(60_000).describe('Delay') }),
      handler: async ({ ms }) => {
        await new Promise((r) => setTimeout(r, ms));
        return { slept: ms };
      },
    },
  },
});
