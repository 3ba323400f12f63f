/**
 * Test-only plugin for the gateway's tests: answers with any error code on demand, waits past a
 * deadline, and emits events in bursts (of a given size), so every status mapping, every stream
 * and the slow-client bound can be driven without depending on other plugins' backends.
 */
import { z } from 'zod';
import { DaemonError, definePlugin } from '../../../../daemon/plugin-api.js';
import { ERROR_CODES, type ErrorCode } from '../../../../client/errors.js';

export default definePlugin({
  name: 'fix',
  namespaces: ['fix'],
  // The instance is the context: all this plugin does is emit through it.
  start: (ctx) => ctx,
  publishes: { 'fix:tick': 'A test event: {i, pad}', 'fix:rare': 'A rare test event: {i}' },
  events: {
    'fix:fail': {
      summary: 'Answer with the given error code (HANDLER_ERROR for "THROW": a plain Error).',
      schema: z.object({ code: z.string() }),
      errors: Object.keys(ERROR_CODES) as ErrorCode[],
      handler: ({ code }) => {
        if (code === 'THROW') throw new Error('boom');
        throw new DaemonError(code as ErrorCode, `failing with ${code} on request`);
      },
    },
    'fix:sleep': {
      summary: 'Answer after ms milliseconds.',
      schema: z.object({ ms: z.number().int().min(0).max(60_000) }),
      handler: async ({ ms }) => {
        await new Promise((r) => setTimeout(r, ms));
        return { slept: ms };
      },
    },
    'fix:spin': {
      summary: 'Hold the event loop for ms milliseconds (synchronous work), then answer: an expensive request.',
      schema: z.object({ ms: z.number().min(0).max(1000) }),
      handler: ({ ms }) => {
        const until = performance.now() + ms;
        while (performance.now() < until);
        return { spun: ms };
      },
    },
    'fix:gc': {
      summary: 'Collect garbage (when node runs with --expose-gc) and answer the heap in use, in bytes.',
      schema: z.object({}),
      handler: () => {
        const gc = (globalThis as { gc?: () => void }).gc;
        gc?.();
        gc?.();
        return { collected: gc !== undefined, heap_used: process.memoryUsage().heapUsed };
      },
    },
    'fix:emit': {
      summary:
        'Emit n events named `event` (default fix:tick) with a pad of `bytes` characters, in batches of `batch` per macrotask.',
      schema: z.object({
        n: z.number().int().min(1).max(1_000_000),
        event: z.string().default('fix:tick'),
        bytes: z.number().int().min(0).max(100_000).default(0),
        batch: z.number().int().min(1).default(1000),
      }),
      handler: async ({ n, event, bytes, batch }, ctx) => {
        const pad = 'x'.repeat(bytes);
        let first = 0;
        for (let i = 0; i < n; i++) {
          if (i > 0 && i % batch === 0) await new Promise((r) => setImmediate(r));
          ctx.emit(event, { i, pad });
          if (i === 0) first = i;
        }
        return { emitted: n, first };
      },
    },
  },
});
