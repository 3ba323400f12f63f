/** Shared setup of the workflow integration tests: a daemon config, reply scripting by prompt, event collection. */
import YAML from 'yaml';
import type { EventClient } from '../../client/event-client.js';
import type { RecordedRequest } from '../fixtures/messages-api-server.js';
export { collect, waitFor } from '../helpers/events.js';

export const KEY = 'sk-ant-workflow-test-key';

type Sections = Record<string, Record<string, unknown>>;

/** agentd.yaml: a cheap priced test model, the embedded graph, sandbox only when asked. */
export function workflowConfig(extra: Sections = {}, opts: { sandbox?: boolean } = {}): string {
  const base: Sections = {
    daemon: { disabled_plugins: opts.sandbox ? ['bridge'] : ['sandbox', 'bridge'] },
    budget: { prices: { 'test-model': { input: 1, output: 2 } } },
    completion: { default_model: 'test-model', max_retries: 0, max_concurrency: 16 },
    agent: { watch_profiles: false, default_model: 'test-model' },
    sandbox: { pool_size: 0 },
    workflow: { watch: false, planner_model: 'test-model' },
  };
  for (const [k, v] of Object.entries(extra)) base[k] = { ...base[k], ...v };
  return YAML.stringify(base);
}

/** The text of the first user message of a recorded request (an agent turn's message). */
export function firstUserText(r: RecordedRequest): string {
  const msgs = r.body.messages as Array<{ role: string; content: unknown }>;
  for (const m of msgs) {
    if (m.role !== 'user') continue;
    if (typeof m.content === 'string') return m.content;
    const t = (m.content as Array<{ type: string; text?: string }>).find((b) => b.type === 'text');
    if (t?.text) return t.text;
  }
  return '';
}

/** The text of the last user message. */
export function lastUserText(r: RecordedRequest): string {
  const msgs = r.body.messages as Array<{ role: string; content: unknown }>;
  const m = [...msgs].reverse().find((x) => x.role === 'user');
  if (!m) return '';
  if (typeof m.content === 'string') return m.content;
  return (m.content as Array<{ type: string; text?: string }>).map((b) => b.text ?? '').join('');
}

export const systemOf = (r: RecordedRequest): string =>
  typeof r.body.system === 'string' ? r.body.system : JSON.stringify(r.body.system ?? '');

/** Start a run and wait for its end through the workflow:finished event (no polling). */
export async function runToEnd(
  c: EventClient,
  data: Record<string, unknown>,
  timeoutMs = 120_000,
): Promise<Record<string, unknown>> {
  return c.request('workflow:start', { ...data, wait: true }, { timeoutMs });
}
