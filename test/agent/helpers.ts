/** Shared setup of the agent tests: a mock Messages API, a daemon pointed at it, and reply scripts. */
import YAML from 'yaml';
import type { MockReply, RecordedRequest } from '../fixtures/messages-api-server.js';
export { waitFor, collect, errorOf } from '../helpers/events.js';

export const KEY = 'sk-ant-agent-test-key';

type Sections = Record<string, Record<string, unknown>>;

/** agentd.yaml: a cheap priced test model; sandbox off unless asked (no containers in plain tests). */
export function agentConfig(extra: Sections = {}, opts: { sandbox?: boolean } = {}): string {
  const base: Sections = {
    daemon: { disabled_plugins: opts.sandbox ? [] : ['sandbox'] },
    budget: { prices: { 'test-model': { input: 1, output: 2 } } },
    completion: { default_model: 'test-model', max_retries: 0, max_concurrency: 16 },
    agent: { watch_profiles: false },
    sandbox: { pool_size: 0 },
  };
  for (const [k, v] of Object.entries(extra)) base[k] = { ...base[k], ...v };
  return YAML.stringify(base);
}

export const toolUse = (name: string, input: Record<string, unknown>, id?: string): MockReply => ({
  content: [{ type: 'tool_use', name, input, ...(id ? { id } : {}) }],
});

/** The tool_result blocks the model was sent in a request's last message. */
export function toolResultsOf(r: RecordedRequest): Array<{ tool_use_id: string; content: string; is_error?: boolean }> {
  const msgs = r.body.messages as Array<{ role: string; content: unknown }>;
  const last = msgs[msgs.length - 1]!;
  if (!Array.isArray(last.content)) return [];
  return (last.content as Array<Record<string, unknown>>).filter((b) => b.type === 'tool_result') as never;
}

/** The system prompt of a recorded request, as text. */
export const systemOf = (r: RecordedRequest): string =>
  typeof r.body.system === 'string' ? r.body.system : JSON.stringify(r.body.system ?? '');
