/**
 * The generated event types (client/event-types.ts) at work: checked by `npm run typecheck`. A wrong
 * field or a wrong value in a request to one of the daemon's events is a compile error, and the
 * answer is typed; naming a type (`request<T>`) is the deliberate way out.
 */
import { describe, expectTypeOf, it } from 'vitest';
import type { EventClient } from '../../client/event-client.js';
import type { EventData, EventResponse } from '../../client/event-types.js';
import type { CallContext } from '../../daemon/plugin-api.js';

export async function script(c: EventClient, call: CallContext): Promise<void> {
  const stats = await c.request('kg:stats', {});
  expectTypeOf(stats.nodes).toEqualTypeOf<number>();
  expectTypeOf(stats.labels).toEqualTypeOf<Record<string, number>>();
  const r = await c.request('completion:request', { prompt: 'hi', max_tokens: 100 });
  expectTypeOf(r.text).toEqualTypeOf<string>();
  expectTypeOf(r.usage.output_tokens).toEqualTypeOf<number>();

  // @ts-expect-error -- kg:get takes `id`, not `idd`
  await c.request('kg:get', { idd: 'x' });
  // @ts-expect-error -- a scope is global|agent|session|workflow
  await c.request('budget:set', { scope: 'planet', limit_usd: 1 });
  // @ts-expect-error -- max_tokens is a number
  await c.request('completion:async', { prompt: 'hi', max_tokens: 'many' });
  // @ts-expect-error -- the answer has no such field
  void (await c.request('system:ping')).pang;

  // The same types from inside a plugin.
  const ping = await call.request('system:ping');
  expectTypeOf(ping.pong).toEqualTypeOf<true>();
  // @ts-expect-error -- sandbox:exec needs language and code
  await call.request('sandbox:exec', { code: 'print(1)' });

  // Naming a type opts out: an event of one's own plugin, or data that is wrong on purpose.
  await c.request<{ n: number }>('notes:list', { tag: 'x' });
  await c.request<Record<string, unknown>>('kg:get', { idd: 'x' });
  expectTypeOf<EventData<'kg:get'>>().toEqualTypeOf<{ id: string }>();
  expectTypeOf<EventResponse<'system:ping'>>().toEqualTypeOf<{ pong: true }>();
}

describe('generated event types', () => {
  it('are checked by the compiler (this file only has to compile)', () => {
    expectTypeOf(script).toBeFunction();
  });
});
