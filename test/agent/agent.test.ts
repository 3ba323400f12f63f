/** agent:* through the socket of a real daemon, against the mock Messages API scripting tool_use. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ROOT, startDaemon, tempHome, type DaemonHandle } from '../helpers/daemon-process.js';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import type { EventFrame } from '../../client/protocol.js';
import {
  conversationEndedEvent,
  errorEvent,
  profilesChangedEvent,
  replyEvent,
  spawnedEvent,
  terminatedEvent,
  toolCallEvent,
  toolResultEvent,
  turnStartedEvent,
  utteranceEvent,
} from '../../plugins/agent/schemas.js';
import { agentConfig, collect, errorOf, KEY, toolResultsOf, toolUse, waitFor } from './helpers.js';

let api: MessagesApiServer;
let d: DaemonHandle;
let events: EventFrame[];
const profilesDir = path.join(tempHome('agentd-profiles-'), 'profiles');

beforeAll(async () => {
  fs.mkdirSync(profilesDir);
  fs.writeFileSync(
    path.join(profilesDir, 'helper.yaml'),
    'system: You help.\ntools: [kg_add, kg_query]\nlimits: {max_tool_calls: 3, max_turns: 4}\n',
  );
  fs.writeFileSync(path.join(profilesDir, 'broken.yaml'), 'system: [not, a, string]\n');
  fs.writeFileSync(path.join(profilesDir, 'pro.yaml'), 'system: You argue for.\n');
  fs.writeFileSync(path.join(profilesDir, 'con.yaml'), 'system: You argue against.\n');
  api = await startMessagesApiServer();
  d = await startDaemon({
    env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
    config: agentConfig({ agent: { profiles_dir: profilesDir, watch_profiles: true } }),
    readyTimeoutMs: 45_000,
  });
  events = await collect(d.client, ['agent:*']);
}, 60_000);

afterAll(async () => {
  await d?.stop();
  await api?.close();
});

beforeEach(() => {
  api.reset();
  events.length = 0;
});

const rq = (event: string, data: Record<string, unknown>, timeoutMs = 20_000) =>
  d.client.request(event, data, { timeoutMs });
const of = (name: string, turnId: string) => events.filter((e) => e.event === name && e.data.turn_id === turnId);

describe('a turn', () => {
  it('sends history, system and tool definitions; answers with the reply; emits events with causality', async () => {
    const a = await rq('agent:spawn', { agent_id: 'plain', system: 'Be brief.', tools: ['kg_query'] });
    expect(a).toMatchObject({ agent_id: 'plain', status: 'idle', tools: ['kg_query'], depth: 0, parent_id: null });
    api.enqueue({ text: 'hello there', usage: { input_tokens: 100, output_tokens: 10 } });
    const r = await rq('agent:send', { agent_id: 'plain', message: 'hi' });
    expect(r).toMatchObject({
      agent_id: 'plain',
      status: 'completed',
      reply: 'hello there',
      stop_reason: 'end_turn',
      steps: 1,
      tool_calls: [],
    });
    expect(r.cost_usd).toBeCloseTo((100 * 1 + 10 * 2) / 1e6, 12);
    const body = api.messageRequests()[0]!.body;
    expect(body).toMatchObject({
      model: 'test-model',
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(
      (body.tools as Array<{ name: string; input_schema: { type: string } }>).map((t) => [t.name, t.input_schema.type]),
    ).toEqual([['kg_query', 'object']]);

    api.enqueue({ text: 'second' });
    await rq('agent:send', { agent_id: 'plain', message: 'again' });
    const second = api.messageRequests()[1]!.body.messages as Array<{ role: string; content: unknown }>;
    expect(second.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(second[1]!.content).toEqual([{ type: 'text', text: 'hello there' }]);

    const turnId = String(r.turn_id);
    await waitFor(() => of('agent:reply', turnId).length === 1);
    const started = of('agent:turn_started', turnId)[0]!;
    const reply = of('agent:reply', turnId)[0]!;
    turnStartedEvent.parse(started.data);
    replyEvent.parse(reply.data);
    expect(started.data).toMatchObject({ source: 'send', resumed: false });
    expect(started.context?.agent_id).toBe('plain');
    expect(reply.context?.root_id).toBe(started.context?.root_id);
    const spawned = events.find((e) => e.event === 'agent:spawned' && e.data.agent_id === 'plain');
    if (spawned) spawnedEvent.parse(spawned.data);

    const info = await rq('agent:info', { agent_id: 'plain' });
    expect(info).toMatchObject({ agent_id: 'plain', history_length: 4, usage: { turns: 2 }, queued_turns: 0 });
    expect((info.turns as unknown[]).length).toBe(2);
  });

  it('runs tools through the router (kg_add, kg_query), feeds results back, and records them', async () => {
    await rq('agent:spawn', { agent_id: 'grapher', tools: ['kg_add', 'kg_query'] });
    api.enqueue(
      toolUse(
        'kg_add',
        {
          nodes: [
            { id: 'h-1', label: 'Hypothesis', properties: { statement: 'x' } },
            { id: 'f-1', label: 'Finding', properties: { statement: 'y' } },
          ],
          edges: [{ from: 'f-1', to: 'h-1', type: 'SUPPORTS' }],
        },
        'tu-add',
      ),
      toolUse('kg_query', { id: 'h-1' }, 'tu-q'),
      { text: 'recorded' },
    );
    const r = await rq('agent:send', { agent_id: 'grapher', message: 'record it' });
    expect(r).toMatchObject({ reply: 'recorded', steps: 3 });
    expect((r.tool_calls as Array<Record<string, unknown>>).map((c) => [c.name, c.is_error])).toEqual([
      ['kg_add', false],
      ['kg_query', false],
    ]);
    const node = await rq('kg:get', { id: 'f-1' });
    expect(JSON.stringify(node)).toContain('Finding');
    const reqs = api.messageRequests();
    expect(reqs).toHaveLength(3);
    const added = toolResultsOf(reqs[1]!)[0]!;
    expect(added.tool_use_id).toBe('tu-add');
    expect(added.is_error).toBeUndefined();
    expect(JSON.parse(added.content).node_ids).toEqual(['h-1', 'f-1']);
    expect(toolResultsOf(reqs[2]!)[0]!.content).toContain('f-1');
    const turnId = String(r.turn_id);
    await waitFor(() => of('agent:tool_result', turnId).length === 2);
    for (const e of of('agent:tool_call', turnId)) toolCallEvent.parse(e.data);
    for (const e of of('agent:tool_result', turnId)) toolResultEvent.parse(e.data);
    // The tool's own request is caused by the turn: same root, deeper.
    const call = of('agent:tool_call', turnId)[0]!;
    expect(call.context?.agent_id).toBe('grapher');
  });

  it('refuses tools the agent lacks and malformed input, and tells the model', async () => {
    await rq('agent:spawn', { agent_id: 'limited', tools: ['kg_query'] });
    api.enqueue(
      {
        content: [
          { type: 'tool_use', id: 'tu-1', name: 'sandbox_exec', input: { language: 'python', code: 'print(1)' } },
          { type: 'tool_use', id: 'tu-2', name: 'kg_query', input: { limit: 'many' } },
          { type: 'tool_use', id: 'tu-3', name: 'rm_rf', input: {} },
        ],
      },
      { text: 'sorry' },
    );
    const r = await rq('agent:send', { agent_id: 'limited', message: 'try' });
    expect(r.reply).toBe('sorry');
    const results = toolResultsOf(api.messageRequests()[1]!);
    expect(results.map((x) => [x.tool_use_id, x.is_error, JSON.parse(x.content).error.code])).toEqual([
      ['tu-1', true, 'NOT_ALLOWED'],
      ['tu-2', true, 'INVALID_INPUT'],
      ['tu-3', true, 'UNKNOWN_TOOL'],
    ]);
    expect(results[0]!.content).toContain('kg_query');
  });

  it('stops a model that never stops calling tools, cleanly, at the tool-call limit and at the turn limit', async () => {
    await rq('agent:spawn', { agent_id: 'looper', tools: ['kg_query'], limits: { max_tool_calls: 3, max_turns: 10 } });
    api.setHandler(() => toolUse('kg_query', { label: 'Nothing' }));
    const r = await rq('agent:send', { agent_id: 'looper', message: 'go' });
    expect(r).toMatchObject({ status: 'completed', stop_reason: 'tool_call_limit', steps: 4 });
    expect((r.tool_calls as unknown[]).length).toBe(3);
    expect(api.messageRequests()).toHaveLength(4);
    // The fourth call was refused, and the refusal is in the history the model sees next time.
    const info = await rq('agent:info', { agent_id: 'looper', history_limit: 1 });
    const [last] = info.history as Array<{ role: string; content: Array<{ is_error?: boolean; content: string }> }>;
    expect(last!.role).toBe('user');
    expect(last!.content[0]!.is_error).toBe(true);
    expect(JSON.parse(last!.content[0]!.content).error.code).toBe('LIMIT');

    await rq('agent:spawn', {
      agent_id: 'looper2',
      tools: ['kg_query'],
      limits: { max_tool_calls: 100, max_turns: 3 },
    });
    const r2 = await rq('agent:send', { agent_id: 'looper2', message: 'go' });
    expect(r2).toMatchObject({ status: 'completed', stop_reason: 'turn_limit', steps: 3 });
    // The agent is not stuck: its next message gets a normal turn (history stays valid for the API).
    api.setHandler(() => ({ text: 'done now' }));
    const r3 = await rq('agent:send', { agent_id: 'looper2', message: 'stop' });
    expect(r3.reply).toBe('done now');
    const msgs = api.messageRequests().at(-1)!.body.messages as Array<{ role: string }>;
    for (let i = 1; i < msgs.length; i++) expect(msgs[i]!.role).not.toBe(msgs[i - 1]!.role);
  });
});

describe('bad input', () => {
  it('answers typed errors and changes nothing', async () => {
    expect((await errorOf(rq('agent:spawn', { profile: 'nope' }))).code).toBe('NOT_FOUND');
    expect((await errorOf(rq('agent:spawn', { tools: ['rm_rf'] }))).code).toBe('INVALID_DATA');
    expect((await errorOf(rq('agent:spawn', { agent_id: 'bad id!' }))).code).toBe('INVALID_DATA');
    expect((await errorOf(rq('agent:send', { agent_id: 'ghost', message: 'hi' }))).code).toBe('NOT_FOUND');
    expect((await errorOf(rq('agent:send', { agent_id: 'ghost', message: '   ' }))).code).toBe('INVALID_DATA');
    expect((await errorOf(rq('agent:info', { agent_id: 'ghost' }))).code).toBe('NOT_FOUND');
    expect((await errorOf(rq('agent:converse', { agents: ['a'], opening: 'x' }))).code).toBe('INVALID_DATA');
    await rq('agent:spawn', { agent_id: 'dup' });
    expect((await errorOf(rq('agent:spawn', { agent_id: 'dup' }))).code).toBe('CONFLICT');
    await rq('agent:terminate', { agent_id: 'dup' });
    const e = await errorOf(rq('agent:send', { agent_id: 'dup', message: 'hi' }));
    expect(e.code).toBe('CONFLICT');
    expect((await errorOf(rq('agent:message', { from: 'plain', to: 'dup', content: 'hi' }))).code).toBe('CONFLICT');
    expect(await rq('agent:terminate', { agent_id: 'dup' })).toMatchObject({
      already_terminated: true,
      terminated: [],
    });
    expect(api.messageRequests()).toHaveLength(0);
  });

  it('caps children and depth, and a child never gets tools its parent lacks', async () => {
    await rq('agent:spawn', {
      agent_id: 'parent',
      tools: ['kg_query', 'spawn_agent'],
      limits: { max_children: 2, max_depth: 1 },
    });
    await rq('agent:spawn', { agent_id: 'c1', parent_id: 'parent', tools: ['kg_query'] });
    await rq('agent:spawn', { agent_id: 'c2', parent_id: 'parent' });
    const over = await errorOf(rq('agent:spawn', { agent_id: 'c3', parent_id: 'parent' }));
    expect(over.code).toBe('CONFLICT');
    expect(over.details).toMatchObject({ cap: 'max_children', limit: 2 });
    const deep = await errorOf(rq('agent:spawn', { agent_id: 'gc', parent_id: 'c1' }));
    expect(deep.details).toMatchObject({ cap: 'max_depth', agent_id: 'parent' });
    await rq('agent:terminate', { agent_id: 'c2' });
    expect(
      (await errorOf(rq('agent:spawn', { agent_id: 'c4', parent_id: 'parent', tools: ['sandbox_exec'] }))).code,
    ).toBe('CONFLICT');
    await rq('agent:spawn', { agent_id: 'c4', parent_id: 'parent' });
    const kids = await rq('agent:list', { parent_id: 'parent', status: 'live' });
    expect((kids.agents as Array<{ agent_id: string }>).map((a) => a.agent_id).sort()).toEqual(['c1', 'c4']);
    const t = await rq('agent:terminate', { agent_id: 'parent', cascade: true, reason: 'done' });
    expect((t.terminated as string[]).sort()).toEqual(['c1', 'c4', 'parent']);
    await waitFor(() => events.filter((e) => e.event === 'agent:terminated').length === 4);
    for (const ev of events.filter((e) => e.event === 'agent:terminated')) terminatedEvent.parse(ev.data);
    expect(events.find((e) => e.event === 'agent:terminated' && e.data.agent_id === 'c1')!.data.cascade_from).toBe(
      'parent',
    );
  });

  it('keeps an agent within its budget through the budget plugin', async () => {
    await rq('agent:spawn', { agent_id: 'thrifty', budget_usd: 0.000001 });
    const st = await rq('budget:status', { scope: 'agent', id: 'thrifty' });
    expect(JSON.stringify(st)).toContain('"limit_usd":0.000001');
    const e = await errorOf(rq('agent:send', { agent_id: 'thrifty', message: 'write me a novel' }));
    expect(e.code).toBe('BUDGET_EXCEEDED');
    expect(e.details?.turn_id).toBeTruthy();
    expect(api.messageRequests()).toHaveLength(0);
    await waitFor(() => events.some((x) => x.event === 'agent:error' && x.data.agent_id === 'thrifty'));
    errorEvent.parse(events.find((x) => x.event === 'agent:error' && x.data.agent_id === 'thrifty')!.data);
    // The agent is not stuck: with a bigger limit it answers.
    await rq('budget:set', { scope: 'agent', id: 'thrifty', limit_usd: 1 });
    api.enqueue({ text: 'ok' });
    expect((await rq('agent:send', { agent_id: 'thrifty', message: 'short then' })).reply).toBe('ok');
  });
});

describe('terminate', () => {
  it('stops a running turn (its model call is cancelled) and cancels the queued ones', async () => {
    await rq('agent:spawn', { agent_id: 'victim', system: 'You are the victim.' });
    api.setHandler(() => ({ kind: 'hang' }));
    const running = await rq('agent:send', { agent_id: 'victim', message: 'think hard', wait: false, turn_id: 'v-1' });
    const queued = await rq('agent:send', {
      agent_id: 'victim',
      message: 'and then this',
      wait: false,
      turn_id: 'v-2',
    });
    expect([running.status, queued.status]).toEqual(['queued', 'queued']);
    await waitFor(() => api.inFlight() === 1, 10_000, 'model call in flight');
    const t = await rq('agent:terminate', { agent_id: 'victim', reason: 'taking too long' });
    expect(t).toMatchObject({ terminated: ['victim'], cancelled_turns: 1 });
    const e1 = await errorOf(rq('agent:send', { agent_id: 'victim', message: 'think hard', turn_id: 'v-1' }));
    const e2 = await errorOf(rq('agent:send', { agent_id: 'victim', message: 'and then this', turn_id: 'v-2' }));
    expect([e1.code, e2.code]).toEqual(['CANCELLED', 'CANCELLED']);
    await waitFor(() => api.inFlight() === 0, 10_000, 'model call aborted');
    const info = await rq('agent:info', { agent_id: 'victim' });
    expect(info).toMatchObject({ status: 'terminated', terminate_reason: 'taking too long', current_turn: null });
    expect((info.turns as Array<{ status: string }>).map((x) => x.status)).toEqual(['cancelled', 'cancelled']);
    expect(api.messageRequests()).toHaveLength(1);
  });
});

describe('children and messages', () => {
  it('spawn_agent creates a child from a profile and waits for its answer to the task', async () => {
    await rq('agent:spawn', { agent_id: 'boss', tools: ['spawn_agent', 'kg_query'], budget_usd: 5 });
    api.setHandler((req) => {
      const sys = String(req.body.system ?? '');
      const n = (req.body.messages as unknown[]).length;
      if (sys.startsWith('You help')) return { text: 'child says 42' };
      if (n === 1) return toolUse('spawn_agent', { profile: 'helper', task: 'compute the answer' }, 'tu-spawn');
      return { text: `boss heard: ${toolResultsOf(req)[0]!.content}` };
    });
    const r = await rq('agent:send', { agent_id: 'boss', message: 'delegate' });
    expect(String(r.reply)).toContain('child says 42');
    const kids = (await rq('agent:info', { agent_id: 'boss' })).children as Array<{ agent_id: string }>;
    expect(kids).toHaveLength(1);
    const child = await rq('agent:info', { agent_id: kids[0]!.agent_id });
    expect(child).toMatchObject({ parent_id: 'boss', depth: 1, profile: 'helper', tools: ['kg_query'] }); // the profile's kg_add is narrowed away: boss lacks it
    // budget: with none of its own, the child got what the parent had left (a little under $5)
    expect(Number(child.budget_usd)).toBeGreaterThan(4.99);
    expect(Number(child.budget_usd)).toBeLessThan(5);
    const st = await rq('budget:status', { scope: 'agent', id: kids[0]!.agent_id });
    expect((st.scopes as Array<{ limit_usd: number }>)[0]!.limit_usd).toBe(child.budget_usd);
  });

  it('agent:message delivers to the inbox and the receiver takes a turn', async () => {
    await rq('agent:spawn', { agent_id: 'alice' });
    await rq('agent:spawn', { agent_id: 'bob' });
    api.setHandler(() => ({ text: 'got it' }));
    const m = await rq('agent:message', { from: 'alice', to: 'bob', content: 'meet at noon', message_id: 'm-1' });
    expect(m).toMatchObject({ message_id: 'm-1', to: 'bob', status: 'queued' });
    const again = await rq('agent:message', { from: 'alice', to: 'bob', content: 'meet at noon', message_id: 'm-1' });
    expect(again).toMatchObject({ duplicate: true, turn_id: m.turn_id });
    await waitFor(() => of('agent:reply', String(m.turn_id)).length === 1);
    expect(of('agent:turn_started', String(m.turn_id))[0]!.data).toMatchObject({ source: 'message', from: 'alice' });
    expect(api.messageRequests()).toHaveLength(1);
    expect(JSON.stringify(api.messageRequests()[0]!.body.messages)).toContain('[message from agent alice]');
    const info = await rq('agent:info', { agent_id: 'bob' });
    expect(info.inbox).toEqual([
      expect.objectContaining({ message_id: 'm-1', from: 'alice', content: 'meet at noon', turn_status: 'completed' }),
    ]);
  });

  it('a runaway pair messaging each other forever is stopped by loop detection, naming the agents', async () => {
    await rq('agent:spawn', { agent_id: 'ping', system: 'You are ping.', tools: ['message_agent'] });
    await rq('agent:spawn', { agent_id: 'pong', system: 'You are pong.', tools: ['message_agent'] });
    api.setHandler((req) => {
      if (toolResultsOf(req).length) return { text: 'sent' };
      const me = String(req.body.system).includes('ping') ? 'ping' : 'pong';
      return toolUse('message_agent', {
        to: me === 'ping' ? 'pong' : 'ping',
        content: me === 'ping' ? 'hello' : 'goodbye',
      });
    });
    await rq('agent:send', { agent_id: 'ping', message: 'say hello to pong' });
    const loop = await waitFor(
      () => events.find((e) => e.event === 'agent:error' && e.data.code === 'LOOP_DETECTED'),
      30_000,
      'LOOP_DETECTED',
    );
    errorEvent.parse(loop.data);
    const agents = loop.data.agents as string[];
    expect(new Set(agents)).toEqual(new Set(['ping', 'pong']));
    expect(agents.length).toBeGreaterThan(5);
    // It stays stopped: once both are idle, no more model calls. A model call happens only inside a
    // turn, and a turn is only started from the queue, so idle with nothing queued, read twice around
    // the count, means none is coming.
    const bothIdle = async () => {
      const infos = await Promise.all(
        ['ping', 'pong'].map((id) => rq('agent:info', { agent_id: id, history_limit: 0 })),
      );
      return infos.every((i) => i.status === 'idle' && i.queued_turns === 0);
    };
    await waitFor(bothIdle, 10_000, 'both idle');
    const n = api.messageRequests().length;
    expect(await bothIdle()).toBe(true);
    expect(api.messageRequests().length).toBe(n);
    expect(n).toBeLessThan(200);
  });
});

describe('profiles', () => {
  it('lists valid profiles, reports invalid ones, and picks up edits without a restart', async () => {
    const p = await rq('agent:profiles', {});
    expect((p.profiles as Array<{ name: string }>).map((x) => x.name)).toEqual(['con', 'helper', 'pro']);
    expect(p.invalid).toEqual([expect.objectContaining({ file: path.join(profilesDir, 'broken.yaml') })]);
    expect((await errorOf(rq('agent:spawn', { profile: 'broken' }))).code).toBe('NOT_FOUND');

    fs.writeFileSync(
      path.join(profilesDir, 'fresh.yaml'),
      'description: new\nmodel: test-model\nsystem: Fresh.\ntools: [kg_query]\n',
    );
    await waitFor(
      async () => ((await rq('agent:profiles', {})).profiles as unknown[]).length === 4,
      10_000,
      'fresh profile',
    );
    const a = await rq('agent:spawn', { profile: 'fresh' });
    expect(a).toMatchObject({ profile: 'fresh', tools: ['kg_query'], model: 'test-model' });

    fs.writeFileSync(path.join(profilesDir, 'broken.yaml'), 'system: Fixed now.\n');
    fs.writeFileSync(path.join(profilesDir, 'fresh.yaml'), 'tools: [teleport]\n');
    await waitFor(
      async () => {
        const q = await rq('agent:profiles', {});
        return (
          (q.profiles as Array<{ name: string }>).map((x) => x.name).join() === 'broken,con,helper,pro' &&
          (q.invalid as unknown[]).length === 1
        );
      },
      10_000,
      'edited profiles',
    );
    const invalid = events.find(
      (e) =>
        e.event === 'agent:profile_changed' &&
        e.data.change === 'invalid' &&
        String(e.data.file).endsWith('fresh.yaml'),
    );
    expect(profilesChangedEvent.parse(invalid!.data)).toMatchObject({
      name: 'fresh',
      error: expect.stringContaining('tools.0'),
    });
    fs.unlinkSync(path.join(profilesDir, 'fresh.yaml'));
    await waitFor(async () => ((await rq('agent:profiles', {})).invalid as unknown[]).length === 0, 10_000, 'removal');
  });
});

describe('conversation', () => {
  it('runs a debate between two profiles to the end, emitting each utterance', async () => {
    let n = 0;
    api.setHandler((req) => ({ text: `${String(req.body.system).includes('for') ? 'PRO' : 'CON'} #${++n}` }));
    const r = await rq('agent:converse', {
      profiles: ['pro', 'con'],
      opening: 'Is tea better than coffee?',
      rounds: 3,
    });
    const t = r.transcript as Array<{ round: number; agent_id: string; text: string }>;
    expect(r.status).toBe('completed');
    expect(t.map((u) => u.text)).toEqual(['PRO #1', 'CON #2', 'PRO #3', 'CON #4', 'PRO #5', 'CON #6']);
    expect(t.map((u) => u.round)).toEqual([1, 1, 2, 2, 3, 3]);
    const utter = events.filter((e) => e.event === 'agent:utterance' && e.data.conversation_id === r.conversation_id);
    expect(utter.map((e) => e.data.text)).toEqual(t.map((u) => u.text));
    for (const e of utter) utteranceEvent.parse(e.data);
    const ended = await waitFor(() =>
      events.find((e) => e.event === 'agent:conversation_ended' && e.data.conversation_id === r.conversation_id),
    );
    expect(conversationEndedEvent.parse(ended.data)).toMatchObject({ status: 'completed', utterances: 6, error: null });
    // The second speaker heard the topic and the first utterance; later the other side's latest.
    const reqs = api.messageRequests();
    expect(JSON.stringify(reqs[1]!.body.messages)).toContain('Is tea better than coffee?');
    expect(JSON.stringify(reqs[1]!.body.messages)).toContain('PRO #1');
    expect(JSON.stringify(reqs[2]!.body.messages)).toContain('CON #2');
    // Spawned agents are terminated at the end.
    for (const id of r.agents as string[]) expect((await rq('agent:info', { agent_id: id })).status).toBe('terminated');
    expect(await rq('agent:conversation', { conversation_id: r.conversation_id })).toMatchObject({
      status: 'completed',
    });
  });

  it('interfaces/debate.ts runs a debate from the command line and prints it live', async () => {
    let n = 0;
    api.setHandler((req) => ({
      text: `${String(req.body.system).includes('for') ? 'Aye' : 'Nay'} (${++n})`,
      chunkChars: 2,
    }));
    const tokens = await collect(d.client, ['completion:token']);
    const proc = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(ROOT, 'interfaces', 'debate.ts'),
        'Should',
        'cats',
        'vote?',
        '--profiles',
        'pro,con',
        '--rounds',
        '2',
        '--socket',
        d.socketPath,
      ],
      {
        cwd: ROOT,
        env: { ...process.env, NODE_OPTIONS: '', NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    proc.stdout.on('data', (b: Buffer) => (out += b));
    proc.stderr.on('data', (b: Buffer) => (out += b));
    const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
    expect(code, out).toBe(0);
    const lines = out.split('\n').filter((l) => /^(pro|con): /.test(l));
    expect(lines).toEqual(['pro: Aye (1)', 'con: Nay (2)', 'pro: Aye (3)', 'con: Nay (4)']);
    expect(out).toContain('Debate: Should cats vote?');
    expect(out).toContain('── round 2 of 2 ──');
    // The speakers' text was streamed (completion:token events of the debate's agents), not printed at the end.
    expect(tokens.filter((e) => String(e.data.agent_id).startsWith('debate-')).length).toBeGreaterThanOrEqual(4);
    const left = await rq('agent:list', { status: 'live' });
    expect((left.agents as Array<{ agent_id: string }>).filter((a) => a.agent_id.startsWith('debate-'))).toEqual([]);
  }, 60_000);
});
