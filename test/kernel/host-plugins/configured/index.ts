/** Test-only: a config schema the test's section does not match. */
import { z } from 'zod';
import { definePlugin } from '../../../../daemon/plugin-api.js';

export default definePlugin({
  name: 'configured',
  namespaces: ['configured'],
  configSchema: z.object({ port: z.number().int() }),
  start: (ctx) => ({ port: ctx.config.port }),
  events: { 'configured:port': { summary: 'Its port.', schema: z.object({}), handler: (_d, c) => ({ port: c.port }) } },
});
