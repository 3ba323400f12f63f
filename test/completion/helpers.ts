/** Small helpers shared by the completion and budget integration tests. */
import type { EventClient } from '../../client/event-client.js';
import type { EventFrame } from '../../client/protocol.js';
import { DaemonError } from '../../client/errors.js';
import YAML from 'yaml';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/daemon-process.js';

/** Poll until `fn` returns a truthy value (or throw after `timeoutMs`). */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
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

/** The error code a promise rejects with (fails the test if it resolves). */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DaemonError) return e.code;
    throw e;
  }
  throw new Error('expected a DaemonError, got a result');
}

export async function errorOf(p: Promise<unknown>): Promise<DaemonError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DaemonError) return e;
    throw e;
  }
  throw new Error('expected a DaemonError, got a result');
}

type Sections = Record<string, Record<string, unknown>>;

/** Every other plugin is disabled: these tests stay fast and do not depend on Docker, Neo4j, etc. */
function otherPlugins(): string[] {
  const dir = path.join(ROOT, 'plugins');
  return fs.readdirSync(dir).filter((n) => n !== 'budget' && n !== 'completion' && fs.existsSync(path.join(dir, n, 'index.ts')));
}

/** agentd.yaml with a cheap test model priced ($1 in, $2 out per MTok), merged with `extra` sections. */
export function testConfig(extra: Sections = {}): string {
  const base: Sections = {
    daemon: { disabled_plugins: otherPlugins() },
    budget: { prices: { 'test-model': { input: 1, output: 2 } } },
    completion: { default_model: 'test-model', max_retries: 1 },
  };
  for (const [k, v] of Object.entries(extra)) base[k] = { ...base[k], ...v };
  return YAML.stringify(base);
}

export const SECRET_KEY = 'sk-ant-test-DO-NOT-LOG-4f2a9c';
