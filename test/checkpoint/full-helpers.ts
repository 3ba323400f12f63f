/**
 * Shared by the full-checkpoint suites: a daemon with every stateful repository plugin (agents,
 * completions, budget, the embedded graph, and the sandbox when a Docker engine is there) beside the
 * fixtures (memo: in-memory state; notes: a table of its own, declared for full checkpoints), talking
 * to the local Messages API; and small readers of the state each plugin keeps.
 */
import type { EventClient } from '../../client/event-client.js';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import type { DaemonHandle } from '../helpers/daemon-process.js';
import { dockerReason } from '../sandbox/docker-env.js';
import { startDaemon, testConfig } from './helpers.js';

export const KEY = 'sk-ant-full-checkpoint-test';
export const withSandbox = dockerReason === null;

export function fullConfig(o: { sandbox?: boolean; checkpoint?: Record<string, unknown> } = {}): string {
  const sandbox = o.sandbox ?? withSandbox;
  return testConfig({
    keep: ['agent', 'completion', 'budget', 'kg', 'workflow', 'trace', ...(sandbox ? ['sandbox'] : [])],
    disableFixtures: ['hang'],
    checkpoint: o.checkpoint ?? {},
    extra: {
      budget: { prices: { 'test-model': { input: 1, output: 2 } } },
      completion: { default_model: 'test-model', max_retries: 0 },
      agent: { watch_profiles: false },
      ...(sandbox ? { sandbox: { pool_size: 0 } } : {}),
    },
  });
}

export async function startFull(
  o: { home?: string; api?: MessagesApiServer; sandbox?: boolean; checkpoint?: Record<string, unknown> } = {},
): Promise<{ d: DaemonHandle; api: MessagesApiServer }> {
  const api = o.api ?? (await startMessagesApiServer());
  const d = await startDaemon({
    ...(o.home ? { home: o.home } : {}),
    env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
    config: fullConfig(o),
  });
  return { d, api };
}

/** What a user would look at to see the state: one readable object per plugin. */
export async function observe(c: EventClient, sessions: string[] = []): Promise<Record<string, unknown>> {
  const rq = <T = Record<string, unknown>>(event: string, data: Record<string, unknown> = {}) =>
    c.request<T>(event, data, { timeoutMs: 30_000 });
  const agents = (
    await rq<{ agents: Array<{ agent_id: string; status: string; turns: number }> }>('agent:list', { limit: 1000 })
  ).agents
    .map((a) => ({ id: a.agent_id, status: a.status, turns: a.turns }))
    .sort((a, b) => a.id.localeCompare(b.id));
  const histories: Record<string, unknown> = {};
  for (const a of agents)
    histories[a.id] = (
      (await rq<{ history: unknown[] }>('agent:info', { agent_id: a.id, history_limit: 100 })).history ?? []
    ).length;
  const conversations: Record<string, unknown> = {};
  for (const s of sessions) {
    conversations[s] = await rq<{ messages: unknown[] }>('conversation:get', { session_id: s }).then(
      (r) => r.messages.length,
      (e: { code?: string }) => e.code,
    );
  }
  const graph = await rq('kg:export', {});
  const memo = (await rq<{ entries: Record<string, unknown> }>('memo:dump', {})).entries;
  const notes = (await rq<{ notes: unknown[] }>('notes:list', {})).notes;
  const runs = (await rq<{ runs: Array<{ run_id: string; status: string }> }>('workflow:runs', { limit: 100 })).runs
    .map((r) => `${r.run_id}:${r.status}`)
    .sort();
  return { agents, histories, conversations, graph: { nodes: graph.nodes, edges: graph.edges }, memo, notes, runs };
}

/** The global spend and how many ledger entries record it. */
export async function spend(c: EventClient): Promise<{ usd: number; entries: number }> {
  const st = await c.request<{ scopes: Array<{ spent_usd: number }> }>('budget:status', { scope: 'global' });
  const ledger = await c.request<{ entries: unknown[] }>('budget:ledger', { limit: 1000 });
  return { usd: st.scopes[0]!.spent_usd, entries: ledger.entries.length };
}
