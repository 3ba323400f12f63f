/** Polling, event collection and error extraction shared by the integration tests. */
import type { EventClient } from '../../client/event-client.js';
import type { EventFrame } from '../../client/protocol.js';
import { DaemonError } from '../../client/errors.js';

/** Poll until `fn` returns a truthy value (or throw after `timeoutMs`). */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Subscribe and keep every event in an array. */
export async function collect(client: EventClient, patterns: string[]): Promise<EventFrame[]> {
  const events: EventFrame[] = [];
  await client.subscribe(patterns, (ev) => events.push(ev));
  return events;
}

/** The DaemonError a promise rejects with (fails the test if it resolves). */
export async function errorOf(p: Promise<unknown>): Promise<DaemonError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DaemonError) return e;
    throw e;
  }
  throw new Error('expected a DaemonError, got a result');
}

/** The error code a promise rejects with. */
export const codeOf = async (p: Promise<unknown>): Promise<string> => (await errorOf(p)).code;
