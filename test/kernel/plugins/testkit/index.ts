// A test-only plugin exercising the kernel: echo, sleeps, hangs, throws, emits, nested requests.
import { z } from 'zod';
import { DaemonError, defineEvent, definePlugin } from '../../../../daemon/plugin-api.js';

let counter = 0;
const seen: string[] = [];

export default definePlugin({
  name: 'testkit',
  namespaces: ['testkit'],
  version: 1,
  events: {
    'testkit:echo': defineEvent({
      summary: 'Answer with the data it was given.',
      schema: z.object({ value: z.unknown().describe('Anything') }).passthrough(),
      handler: (d) => d,
    }),
    'testkit:typed': defineEvent({
      summary: 'Validates a nested schema.',
      schema: z.object({ name: z.string().min(1), n: z.number().int().min(0).max(10), tags: z.array(z.string()).optional(), inner: z.object({ x: z.boolean() }) }),
      handler: () => ({ ok: true }),
    }),
    'testkit:sleep': defineEvent({
      summary: 'Answer after ms milliseconds (with pad characters, for a big answer); stops early when aborted.',
      schema: z.object({ ms: z.number().int().min(0), pad: z.number().int().min(0).max(64 * 1024 * 1024).default(0) }),
      handler: ({ ms, pad }, call) => new Promise((resolve, reject) => {
        const t = setTimeout(() => resolve(pad ? { slept: ms, pad: 'x'.repeat(pad) } : { slept: ms }), ms);
        call.signal.addEventListener('abort', () => {
          clearTimeout(t);
          seen.push(`aborted:${ms}`);
          reject(call.signal.reason);
        });
      }),
    }),
    'testkit:never': defineEvent({ summary: 'Never answers.', schema: z.object({}), handler: () => new Promise(() => undefined) }),
    'testkit:throw': defineEvent({ summary: 'Throws a plain error.', schema: z.object({}), handler: () => { throw new Error('boom'); } }),
    'testkit:conflict': defineEvent({ summary: 'Throws a coded error.', schema: z.object({}), handler: () => { throw new DaemonError('CONFLICT', 'already so', { why: 'test' }); } }),
    'testkit:emit': defineEvent({
      summary: 'Emit count events named event.',
      schema: z.object({ count: z.number().int().min(1).max(1_000_000), event: z.string().default('testkit:tick'), size: z.number().int().min(0).default(0) }),
      handler: ({ count, event, size }, call) => {
        const pad = 'x'.repeat(size);
        for (let i = 0; i < count; i++) call.emit(event, { i, pad });
        return { emitted: count };
      },
    }),
    'testkit:recurse': defineEvent({
      summary: 'Call itself n times deeper (loop detection).',
      schema: z.object({ n: z.number().int().min(0) }),
      handler: async ({ n }, call) => {
        if (n === 0) return { depth: call.context.depth };
        return call.request('testkit:recurse', { n: n - 1 });
      },
    }),
    'testkit:remaining': defineEvent({
      summary: 'Report the time a nested request gets.',
      schema: z.object({}),
      handler: async (_d, call) => {
        const inner = await call.request<{ remaining: number; depth: number; root: string; parent: string | null }>('testkit:remaining_inner', {}, { timeoutMs: 1_000_000 });
        return { outer: call.remainingMs(), inner, id: call.context.id, root: call.context.root_id };
      },
    }),
    'testkit:remaining_inner': defineEvent({
      summary: 'Inner half of testkit:remaining.',
      schema: z.object({}),
      handler: (_d, call) => ({ remaining: call.remainingMs(), depth: call.context.depth, root: call.context.root_id, parent: call.context.parent_id }),
    }),
    'testkit:state': defineEvent({
      summary: 'Increment and read the counter; list aborted sleeps.',
      schema: z.object({ add: z.number().int().default(0) }),
      handler: ({ add }, call) => ({ counter: (counter += add), seen, connection: call.connectionId }),
    }),
  },
  snapshot: () => ({ counter }),
  restore: (s) => {
    counter = (s as { counter: number }).counter;
  },
});
