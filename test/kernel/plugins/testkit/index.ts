// A test-only plugin exercising the kernel: echo, sleeps, hangs, throws, emits, nested requests.
import { z } from 'zod';
import { DaemonError, definePlugin } from '../../../../daemon/plugin-api.js';

export default definePlugin({
  name: 'testkit',
  namespaces: ['testkit'],
  version: 1,
  start: (ctx) => ({ counter: (ctx.restored as { counter: number } | undefined)?.counter ?? 0, seen: [] as string[] }),
  snapshot: (kit) => ({ counter: kit.counter }),
  restore: (kit, s) => {
    kit.counter = (s as { counter: number }).counter;
  },
  events: {
    'testkit:echo': {
      summary: 'Answer with the data it was given.',
      schema: z.object({ value: z.unknown().describe('Anything') }).passthrough(),
      handler: (d) => d,
    },
    'testkit:typed': {
      summary: 'Validates a nested schema.',
      schema: z.object({
        name: z.string().min(1),
        n: z.number().int().min(0).max(10),
        tags: z.array(z.string()).optional(),
        inner: z.object({ x: z.boolean() }),
      }),
      handler: () => ({ ok: true }),
    },
    'testkit:sleep': {
      summary: 'Answer after ms milliseconds (with pad characters, for a big answer); stops early when aborted.',
      schema: z.object({
        ms: z.number().int().min(0),
        pad: z
          .number()
          .int()
          .min(0)
          .max(64 * 1024 * 1024)
          .default(0),
      }),
      handler: ({ ms, pad }, kit, call) =>
        new Promise((resolve, reject) => {
          kit.seen.push(`sleeping:${ms}`);
          const t = setTimeout(() => resolve(pad ? { slept: ms, pad: 'x'.repeat(pad) } : { slept: ms }), ms);
          call.signal.addEventListener('abort', () => {
            clearTimeout(t);
            kit.seen.push(`aborted:${ms}`);
            reject(call.signal.reason);
          });
        }),
    },
    'testkit:never': { summary: 'Never answers.', schema: z.object({}), handler: () => new Promise(() => undefined) },
    'testkit:throw': {
      summary: 'Throws a plain error.',
      schema: z.object({}),
      handler: () => {
        throw new Error('boom');
      },
    },
    'testkit:conflict': {
      summary: 'Throws a coded error.',
      schema: z.object({}),
      handler: () => {
        throw new DaemonError('CONFLICT', 'already so', { why: 'test' });
      },
    },
    'testkit:emit': {
      summary: 'Emit count events named event.',
      schema: z.object({
        count: z.number().int().min(1).max(1_000_000),
        event: z.string().default('testkit:tick'),
        size: z.number().int().min(0).default(0),
      }),
      handler: ({ count, event, size }, _, call) => {
        const pad = 'x'.repeat(size);
        for (let i = 0; i < count; i++) call.emit(event, { i, pad });
        return { emitted: count };
      },
    },
    'testkit:recurse': {
      summary: 'Call itself n times deeper (loop detection).',
      schema: z.object({ n: z.number().int().min(0) }),
      handler: async ({ n }, _, call) => {
        if (n === 0) return { depth: call.context.depth };
        return call.request('testkit:recurse', { n: n - 1 });
      },
    },
    'testkit:remaining': {
      summary: 'Report the time a nested request gets.',
      schema: z.object({}),
      handler: async (_d, _kit, call) => {
        const inner = await call.request<{ remaining: number; depth: number; root: string; parent: string | null }>(
          'testkit:remaining_inner',
          {},
          { timeoutMs: 1_000_000 },
        );
        return { outer: call.remainingMs(), inner, id: call.context.id, root: call.context.root_id };
      },
    },
    'testkit:remaining_inner': {
      summary: 'Inner half of testkit:remaining.',
      schema: z.object({}),
      handler: (_d, _kit, call) => ({
        remaining: call.remainingMs(),
        depth: call.context.depth,
        root: call.context.root_id,
        parent: call.context.parent_id,
      }),
    },
    'testkit:state': {
      summary: 'Increment and read the counter; list aborted sleeps.',
      schema: z.object({ add: z.number().int().default(0) }),
      handler: ({ add }, kit, call) => ({
        counter: (kit.counter += add),
        seen: kit.seen,
        connection: call.connectionId,
      }),
    },
  },
});
