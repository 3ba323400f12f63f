/**
 * Type-level tests of `definePlugin`: checked by `npm run typecheck` (tsc reads every file under
 * test/), where a `@ts-expect-error` that finds no error is itself an error. At run time they only
 * check that the definitions are the plain data given.
 */
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { definePlugin, type CallContext, type PluginContext } from '../../daemon/plugin-api.js';

class Store {
  readonly rows = new Map<string, number>();
  get(id: string): number | undefined {
    return this.rows.get(id);
  }
}

const configSchema = z.object({ size: z.coerce.number().int().default(10), name: z.string().optional() });

const typed = definePlugin({
  name: 'typed',
  namespaces: ['typed'],
  configSchema,
  async start(ctx) {
    expectTypeOf(ctx).toEqualTypeOf<PluginContext<{ size: number; name?: string | undefined }>>();
    expectTypeOf(ctx.config.size).toEqualTypeOf<number>();
    // @ts-expect-error -- not in the schema
    void ctx.config.colour;
    return new Store();
  },
  events: {
    'typed:get': {
      summary: 'One row',
      schema: z.object({ id: z.string(), n: z.number().default(1) }),
      handler: (data, store, call) => {
        expectTypeOf(data).toEqualTypeOf<{ id: string; n: number }>();
        expectTypeOf(store).toEqualTypeOf<Store>();
        expectTypeOf(call).toEqualTypeOf<CallContext>();
        // @ts-expect-error -- the data of another event
        void data.ids;
        // @ts-expect-error -- not a method of the instance
        void store.put;
        return { value: store.get(data.id) ?? null };
      },
    },
    'typed:other': {
      summary: 'Each event infers from its own schema',
      schema: z.object({ flag: z.boolean() }),
      async handler(data, store) {
        expectTypeOf(data).toEqualTypeOf<{ flag: boolean }>();
        return { size: store.rows.size, flag: data.flag };
      },
    },
  },
  subscriptions: {
    'other:*': (ev, store, ctx) => {
      expectTypeOf(store).toEqualTypeOf<Store>();
      expectTypeOf(ctx.config.size).toEqualTypeOf<number>();
      void ev.event;
    },
  },
  stop: (store, ctx, deadline) => {
    expectTypeOf(store).toEqualTypeOf<Store>();
    expectTypeOf(deadline).toEqualTypeOf<number>();
    void ctx.log;
  },
  snapshot: (store) => Object.fromEntries(store.rows),
  restore: (store, state) => {
    for (const [k, v] of Object.entries(state as Record<string, number>)) store.rows.set(k, v);
  },
  health: (store) => ({ rows: store.rows.size }),
});

// A plugin without a schema sees its raw section; one without start has no instance.
const bare = definePlugin({
  name: 'bare',
  namespaces: ['bare'],
  start(ctx) {
    expectTypeOf(ctx.config).toEqualTypeOf<Record<string, unknown>>();
  },
  events: {
    'bare:x': {
      summary: 'x',
      schema: z.object({ a: z.string() }),
      handler: (d, none) => (expectTypeOf(none).toEqualTypeOf<void>(), d.a),
    },
  },
});

definePlugin({
  name: 'wrong',
  namespaces: ['wrong'],
  start: () => new Store(),
  events: {
    // @ts-expect-error -- a handler's instance is what start returned, not something else
    'wrong:x': { summary: 'x', schema: z.object({}), handler: (_d, n: number) => n },
  },
});

describe('definePlugin', () => {
  it('returns the definition as given (plain data)', () => {
    expectTypeOf(typed.name).toEqualTypeOf<string>();
    if (typed.events?.['typed:get'].summary !== 'One row' || bare.name !== 'bare')
      throw new Error('definition changed');
  });
});
