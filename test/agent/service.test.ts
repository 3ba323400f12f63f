/**
 * AgentService driven without a daemon: an in-memory database and a small stand-in for the router
 * that routes completion:request to a script and agent:* back into the service. Covers what needs
 * many agent hops cheaply: the agent.max_message_hops cap.
 */
import Database from 'better-sqlite3';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../plugins/agent/config.js';
import { ProfileStore } from '../../plugins/agent/profiles.js';
import { AgentService, MIGRATIONS } from '../../plugins/agent/service.js';
import type { EventContext, PluginContext } from '../../daemon/plugin-api.js';
import { waitFor } from './helpers.js';

function setup(config: Record<string, unknown>, existing?: Database.Database) {
  const db = existing ?? new Database(':memory:');
  if (!existing) for (const m of MIGRATIONS) db.exec(m);
  const tools: Array<[string, Record<string, unknown>]> = [];
  const hooks: { tool: (event: string, data: Record<string, unknown>) => Promise<unknown> } = {
    tool: async (event, data) =>
      event === 'kg:add_nodes' ? { ids: (data.nodes as Array<{ id: string }>).map((n) => n.id) } : {},
  };
  const emitted: Array<{ event: string; data: Record<string, unknown>; agentId?: string }> = [];
  let svc!: AgentService;
  const model: {
    calls: number;
    gate: Promise<void>;
    reply: (agentId: string, messages: unknown[]) => Record<string, unknown>;
  } = { calls: 0, gate: Promise.resolve(), reply: () => ({}) };
  const request = (async (
    event: string,
    data: Record<string, unknown> = {},
    opts: { context?: EventContext; agentId?: string } = {},
  ) => {
    const ctx: EventContext = {
      ...(opts.context ?? { id: 'r', parent_id: null, root_id: 'r', depth: 0 }),
      ...(opts.agentId ? { agent_id: opts.agentId } : {}),
    };
    if (event === 'completion:request') {
      model.calls++;
      await model.gate;
      return {
        content: [model.reply(String(data.agent_id), data.messages as unknown[])],
        stop_reason: 'end_turn',
        usage: { input_tokens: 1, output_tokens: 1, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 },
        cost_usd: 0.000001,
      };
    }
    if (event === 'agent:message') return svc.message(data as never, ctx);
    if (event.startsWith('kg:')) {
      tools.push([event, data]);
      return hooks.tool(event, data);
    }
    throw new Error(`unexpected ${event}`);
  }) as PluginContext['request'];
  const emit: PluginContext['emit'] = (event, data, opts) =>
    void emitted.push({ event, data, ...(opts?.agentId ? { agentId: opts.agentId } : {}) });
  svc = new AgentService({
    db,
    log: pino({ level: 'silent' }),
    config: configSchema.parse(config),
    profiles: new ProfileStore([]),
    request,
    emit,
  });
  return { svc, emitted, model, db, tools, hooks };
}

const ctx: EventContext = { id: 'c1', parent_id: null, root_id: 'c1', depth: 0 };

describe('AgentService', () => {
  it('stops an agent-to-agent chain at agent.max_message_hops with LOOP_DETECTED naming the agents', async () => {
    const { svc, emitted, model } = setup({ max_message_hops: 3 });
    await svc.spawn({ agent_id: 'a', tools: ['message_agent'] }, ctx);
    await svc.spawn({ agent_id: 'b', tools: ['message_agent'] }, ctx);
    model.reply = (agentId, messages) => {
      const last = messages[messages.length - 1] as { content: unknown };
      if (
        Array.isArray(last.content) &&
        (last.content as Array<{ type: string }>).some((x) => x.type === 'tool_result')
      )
        return { type: 'text', text: 'sent' };
      return {
        type: 'tool_use',
        id: `tu-${model.calls}`,
        name: 'message_agent',
        input: { to: agentId === 'a' ? 'b' : 'a', content: 'hello' },
      };
    };
    await svc.send({ agent_id: 'a', message: 'start', wait: false }, ctx);
    const err = await waitFor(() => emitted.find((e) => e.event === 'agent:error'), 10_000, 'agent:error');
    expect(err.data).toMatchObject({ agent_id: 'b', code: 'LOOP_DETECTED', agents: ['a', 'b', 'a', 'b'] });
    await waitFor(() => svc.list({ status: 'running', limit: 10 }).count === 0, 5000, 'idle');
    // a → b → a → b: four turns; b's last message_agent call was refused, ending its turn.
    expect(emitted.filter((e) => e.event === 'agent:turn_started').map((e) => e.data.agent_id)).toEqual([
      'a',
      'b',
      'a',
      'b',
    ]);
    expect(emitted.filter((e) => e.event === 'agent:error')).toHaveLength(1);
    expect(svc.store.queuedCount('a') + svc.store.queuedCount('b')).toBe(0);
  });

  it('refuses to queue more than agent.max_queued_turns per agent (OVERLOADED) and changes nothing', async () => {
    const { svc, model } = setup({ max_queued_turns: 2 });
    model.reply = () => ({ type: 'text', text: 'ok' });
    let open!: () => void;
    model.gate = new Promise((r) => (open = r));
    await svc.spawn({ agent_id: 'busy' }, ctx);
    // The worker takes the first turn at once; queue two behind it, then the next is refused.
    const first = svc.send({ agent_id: 'busy', message: '1', wait: true }, ctx);
    await svc.send({ agent_id: 'busy', message: '2', wait: false }, ctx);
    await svc.send({ agent_id: 'busy', message: '3', wait: false }, ctx);
    expect(svc.store.queuedCount('busy')).toBe(2);
    const refused = await svc.send({ agent_id: 'busy', message: '4', wait: false }, ctx).then(
      () => null,
      (e: { code: string }) => e.code,
    );
    expect(refused).toBe('OVERLOADED');
    open();
    await first;
    await waitFor(
      () => svc.store.queuedCount('busy') === 0 && svc.list({ status: 'running', limit: 1 }).count === 0,
      5000,
      'drained',
    );
    expect(svc.store.recentTurns('busy', 10)).toHaveLength(3);
  });

  it('after a crash mid-tool-call resumes the turn and runs the (idempotent) call again; past max_resumes it reports daemon_restart', async () => {
    const first = setup({});
    await first.svc.spawn({ agent_id: 'rec', tools: ['kg_add'] }, ctx);
    // A user's text asks for a tool call; a tool result gets the answer.
    first.model.reply = (_id, messages) =>
      typeof (messages[messages.length - 1] as { content: unknown }).content === 'string'
        ? { type: 'tool_use', id: `tu-${messages.length}`, name: 'kg_add', input: { nodes: [{ label: 'Finding' }] } }
        : { type: 'text', text: 'stored' };
    first.hooks.tool = () => new Promise(() => undefined); // the process "dies" inside the tool call
    await first.svc.send({ agent_id: 'rec', message: 'store it', wait: false, turn_id: 'turn-a' }, ctx);
    await waitFor(() => first.tools.length === 1, 5000, 'tool call in flight');
    expect(first.svc.store.turn('turn-a')).toMatchObject({ status: 'running', steps: 1 });

    // "Restart": a new service on the same database; the first one's promises never settle.
    const second = setup({}, first.db);
    second.model.reply = first.model.reply;
    second.svc.recover();
    const r = await second.svc.outcome('turn-a');
    expect(r).toMatchObject({ status: 'completed', reply: 'stored', steps: 2 });
    expect(second.model.calls).toBe(1); // step 1 was not asked again
    expect(second.tools).toHaveLength(1);
    expect(second.tools[0]![1]).toEqual(first.tools[0]![1]); // same derived node id: no duplicate
    expect(second.emitted.find((e) => e.event === 'agent:turn_started')!.data).toMatchObject({ resumed: true });

    // A turn that keeps getting interrupted is failed and reported, not retried forever.
    second.hooks.tool = () => new Promise(() => undefined);
    await second.svc.send({ agent_id: 'rec', message: 'again', wait: false, turn_id: 'turn-b' }, ctx);
    await waitFor(() => second.tools.length === 2, 5000, 'second tool call in flight');
    const third = setup({ max_resumes: 0 }, first.db);
    third.svc.recover();
    const e = await third.svc.outcome('turn-b').then(
      () => null,
      (x: { code: string; details?: Record<string, unknown> }) => x,
    );
    expect(e).toMatchObject({ code: 'UNAVAILABLE', details: { reason: 'daemon_restart', turn_id: 'turn-b' } });
    expect(third.emitted.find((x) => x.event === 'agent:error')!.data).toMatchObject({
      turn_id: 'turn-b',
      reason: 'daemon_restart',
    });
  });
});
