/** Panel rows from the plugins' answers (their real shapes) merged with the stream. */
import { describe, expect, it } from 'vitest';
import {
  agentViews,
  budgetViews,
  completionsView,
  kgView,
  pluginViews,
  sandboxView,
} from '../../interfaces/monitor/state/views.js';
import { initialStream, streamReducer } from '../../interfaces/monitor/state/stream.js';

const at = 1000;
const stream = (events: Array<{ event: string; data: Record<string, unknown>; timestamp?: number }>) =>
  streamReducer(initialStream(), {
    type: 'events',
    events: events.map((e, i) => ({ seq: i + 1, timestamp: e.timestamp ?? at + i, ...e })),
    now: at,
  });

describe('panel views', () => {
  it('lists plugins with problems first', () => {
    const v = pluginViews({
      data: {
        status: 'degraded',
        plugins: {
          kg: { status: 'ok' },
          agent: { status: 'stopped', reason: 'disabled' },
          sandbox: { status: 'degraded', reason: 'no docker' },
          budget: { status: 'failed', reason: 'boom' },
        },
      },
    });
    expect(v.map((p) => `${p.name}:${p.status}`)).toEqual([
      'budget:failed',
      'sandbox:degraded',
      'kg:ok',
      'agent:stopped',
    ]);
    expect(v[1].reason).toBe('no docker');
  });

  it('reads agent:list and overlays the tool in use from the stream', () => {
    const probe = {
      at: at - 10,
      data: {
        agents: [
          { agent_id: 'ada', status: 'idle', usage: { turns: 2, cost_usd: 0.0123 } },
          { agent_id: 'bob', status: 'terminated', usage: { turns: 1, cost_usd: 0 } },
        ],
      },
    };
    const s = stream([
      { event: 'agent:turn_started', data: { agent_id: 'ada', turn_id: 't-1' } },
      { event: 'agent:tool_call', data: { agent_id: 'ada', name: 'sandbox_exec', turn_id: 't-1' } },
      { event: 'agent:spawned', data: { agent_id: 'cy' } },
    ]);
    const v = agentViews(probe, s);
    expect(v.map((a) => a.id)).toEqual(['ada', 'cy']); // a terminated agent the poll still lists is not kept
    expect(v[0]).toMatchObject({ status: 'running', turn: 2, tool: 'sandbox_exec', spendUsd: 0.0123 });
    const after = streamReducer(s, {
      type: 'events',
      events: [
        { event: 'agent:tool_result', data: { agent_id: 'ada', name: 'sandbox_exec' }, seq: 10, timestamp: at + 5 },
      ],
      now: at,
    });
    expect(agentViews(probe, after)[0].tool).toBeUndefined();
  });

  it('shows a terminated agent for half a minute after its end, then drops it', () => {
    const probe = { at, data: { agents: [{ agent_id: 'ada', status: 'idle' }] } };
    const s = stream([
      { event: 'agent:spawned', data: { agent_id: 'bob' } },
      { event: 'agent:terminated', data: { agent_id: 'bob' }, timestamp: at + 1 },
    ]);
    expect(agentViews(probe, s, at + 2).map((a) => `${a.id}:${a.status}`)).toEqual(['ada:idle', 'bob:terminated']);
    expect(agentViews(probe, s, at + 40).map((a) => a.id)).toEqual(['ada']);
  });

  it('reads completion:status (queues per session, in flight) beside the stream', () => {
    const probe = {
      at,
      data: {
        queued: 3,
        running: 1,
        sessions: [
          { session_id: 's-a', queued: 2, running: 1 },
          { session_id: 's-b', queued: 1, running: 0 },
          { session_id: 's-c', queued: 0, running: 0 },
        ],
        in_flight: [{ request_id: 'r-old', session_id: 's-a', agent_id: null, model: 'm' }],
      },
    };
    const s = stream([
      { event: 'completion:error', data: { request_id: 'r-1', error: { code: 'TIMEOUT', message: 'slow' } } },
    ]);
    const v = completionsView(probe, s);
    expect(v).toMatchObject({ inFlight: 1, queued: 3 });
    expect(v.sessions).toEqual([
      { session: 's-a', queued: 2 },
      { session: 's-b', queued: 1 },
    ]);
    expect(v.rows.map((r) => [r.requestId, r.status])).toEqual([
      ['r-old', 'running'],
      ['r-1', 'failed'],
    ]);
  });

  it('orders budget scopes by how close they are to a limit', () => {
    const v = budgetViews({
      data: {
        scopes: [
          { scope: 'global', id: null, period: 'total', spent_usd: 1, limit_usd: null, percent: null },
          { scope: 'agent', id: 'ada', period: 'daily', spent_usd: 0.9, limit_usd: 1, percent: 90 },
          {
            scope: 'session',
            id: 's',
            period: 'total',
            spent_usd: 0.1,
            limit_usd: 1,
            percent: 10,
            spent_tokens: 5,
            limit_tokens: 10,
            percent_tokens: 50,
          },
        ],
      },
    });
    expect(v.map((b) => b.label)).toEqual(['agent:ada', 'session:s', 'global']);
    expect(v[0]).toMatchObject({ period: 'daily', percent: 90, limitUsd: 1 });
  });

  it('reads sandbox:status and kg:stats', () => {
    const s = stream([{ event: 'sandbox:exec_started', data: { exec_id: 'x-1', language: 'r' } }]);
    const sb = sandboxView(
      {
        data: {
          engine: { reachable: false, reason: 'no socket' },
          pool: { size: 2, ready: 0 },
          running_execs: 0,
          sessions: 1,
        },
      },
      s,
    );
    expect(sb).toMatchObject({
      engine: { reachable: false, reason: 'no socket' },
      pool: { size: 2, ready: 0 },
      running: 0,
      sessions: 1,
    });
    expect(sb.rows[0]).toMatchObject({ execId: 'x-1', running: true });
    const kg = kgView({ data: { nodes: 12, edges: 30, labels: { Finding: 4, Paper: 8 }, types: { CITES: 30 } } });
    expect(kg.rows.map((r) => `${r.kind}:${r.name}=${r.count}`)).toEqual([
      'type:CITES=30',
      'label:Paper=8',
      'label:Finding=4',
    ]);
    expect(kgView({ absent: true })).toEqual({ rows: [] });
  });
});
