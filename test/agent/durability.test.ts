/** kill -9 in the middle of a turn: agents, histories, inboxes survive; the turn resumes from its journal. */
import { afterAll, describe, expect, it } from 'vitest';
import { startDaemon, tempHome, type DaemonHandle } from '../helpers/daemon-process.js';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import { agentConfig, KEY, toolResultsOf, toolUse, waitFor } from './helpers.js';

let api: MessagesApiServer;
let d: DaemonHandle | undefined;

afterAll(async () => {
  await d?.stop();
  await api?.close();
});

describe('kill -9 mid-turn', () => {
  it('resumes the interrupted turn without rerunning its finished tool call, then runs the queued inbox turn', async () => {
    api = await startMessagesApiServer();
    const home = tempHome('agentd-agent-dur-');
    const env = { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY };
    const config = agentConfig();
    d = await startDaemon({ home, env, config, readyTimeoutMs: 45_000 });
    const c = d.client;
    await c.request('agent:spawn', {
      agent_id: 'survivor',
      system: 'Record things.',
      tools: ['kg_add'],
      metadata: { team: 'x' },
    });
    await c.request('agent:spawn', { agent_id: 'friend' });

    // Step 1 calls kg_add; step 2 (after the tool result) never answers: the daemon dies there.
    api.enqueue(
      toolUse(
        'kg_add',
        { nodes: [{ id: 'finding-1', label: 'Finding', properties: { statement: 'water is wet' } }] },
        'tu-k',
      ),
      { kind: 'hang' },
    );
    const sent = await c.request('agent:send', {
      agent_id: 'survivor',
      message: 'record a finding',
      wait: false,
      turn_id: 'turn-crash',
    });
    expect(sent).toMatchObject({ turn_id: 'turn-crash', status: 'queued' });
    await waitFor(() => api.messageRequests().length === 2, 10_000, 'second model call in flight');
    const queued = await c.request('agent:message', {
      from: 'friend',
      to: 'survivor',
      content: 'queued note',
      message_id: 'note-1',
    });
    expect(queued.status).toBe('queued');
    const before = await c.request('agent:info', { agent_id: 'survivor' });
    expect(before).toMatchObject({ status: 'running', current_turn: 'turn-crash', queued_turns: 1, history_length: 3 });

    expect(await d.kill('SIGKILL')).toBe('SIGKILL');
    api.reset();
    api.setHandler((req) => ({ text: toolResultsOf(req).length ? 'resumed: recorded finding-1' : 'noted' }));

    d = await startDaemon({ home, env, config, readyTimeoutMs: 45_000 });
    const c2 = d.client;
    const r = await c2.request(
      'agent:send',
      { agent_id: 'survivor', message: 'record a finding', turn_id: 'turn-crash' },
      { timeoutMs: 20_000 },
    );
    expect(r).toMatchObject({ status: 'completed', reply: 'resumed: recorded finding-1', steps: 2 });
    expect((r.tool_calls as Array<{ name: string }>).map((t) => t.name)).toEqual(['kg_add']);

    // Resumed from its journal: the model was asked for step 2 (with the tool result), never step 1 again.
    const after = api.messageRequests();
    expect(after.every((q) => (q.body.messages as unknown[]).length > 1)).toBe(true);
    expect(toolResultsOf(after[0]!)[0]).toMatchObject({ tool_use_id: 'tu-k' });
    expect(await c2.request('kg:get', { id: 'finding-1' })).toBeTruthy();

    const hist = await c2.request('monitor:events', { patterns: ['agent:turn_started'] });
    const started = (hist.events as Array<{ data: Record<string, unknown> }>).map((e) => e.data);
    expect(started).toContainEqual(expect.objectContaining({ turn_id: 'turn-crash', resumed: true }));

    // The inbox message queued before the crash runs too; agent, history and inbox survived.
    const info = await waitFor(
      async () => {
        const i = await c2.request('agent:info', { agent_id: 'survivor' });
        return i.queued_turns === 0 &&
          i.status === 'idle' &&
          (i.inbox as Array<{ turn_status: string }>)[0]?.turn_status === 'completed'
          ? i
          : null;
      },
      15_000,
      'inbox turn',
    );
    expect(info).toMatchObject({
      metadata: { team: 'x' },
      tools: ['kg_add'],
      history_length: 6,
      usage: { turns: 2, tool_calls: 1 },
    });
    expect((info.history as Array<{ role: string }>).map((m) => m.role)).toEqual([
      'user',
      'assistant',
      'user',
      'assistant',
      'user',
      'assistant',
    ]);
    expect(JSON.stringify(info.history)).toContain('[message from agent friend]');
  });

  it('a graceful stop mid-conversation hands the turn back; after the restart the conversation runs to its end', async () => {
    const home = tempHome('agentd-agent-stop-');
    const env = { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY };
    const config = agentConfig({ daemon: { shutdown_timeout_ms: 4000 } });
    await d?.stop();
    api.reset();
    d = await startDaemon({ home, env, config, readyTimeoutMs: 45_000 });
    const c = d.client;
    await c.request('agent:spawn', { agent_id: 'first', system: 'You are first.' });
    await c.request('agent:spawn', { agent_id: 'second', system: 'You are second.' });
    // The second speaker's model call hangs until the daemon stops.
    api.setHandler((req) =>
      String(req.body.system).includes('second') ? { kind: 'hang' } : { text: 'opening words' },
    );
    const talk = c
      .request(
        'agent:converse',
        { agents: ['first', 'second'], opening: 'tabs or spaces?', rounds: 1 },
        { timeoutMs: 60_000 },
      )
      .catch((e: unknown) => e);
    await waitFor(() => api.messageRequests().length === 2, 15_000, 'second speaker in flight');
    expect(await d.stop()).toBe(0);
    expect(await talk).toMatchObject({ code: expect.stringMatching(/SHUTTING_DOWN|UNAVAILABLE/) });

    api.setHandler(() => ({ text: 'closing words' }));
    d = await startDaemon({ home, env, config, readyTimeoutMs: 45_000 });
    const listed = await waitFor(
      async () => {
        const info = await d!.client.request('agent:info', { agent_id: 'second', history_limit: 0 });
        return (info.turns as Array<{ status: string }>)[0]?.status === 'completed' ? info : null;
      },
      20_000,
      'resumed turn',
    );
    expect(listed.usage).toMatchObject({ turns: 1 });
    type Ev = { event: string; data: Record<string, unknown> };
    const history = async (): Promise<Ev[]> =>
      (await d!.client.request('monitor:events', { patterns: ['agent:conversation_ended', 'agent:turn_started'] }))
        .events as Ev[];
    expect((await history()).find((e) => e.event === 'agent:turn_started')?.data).toMatchObject({
      agent_id: 'second',
      resumed: true,
    });
    const ended = await waitFor(
      async () => (await history()).find((e) => e.event === 'agent:conversation_ended'),
      10_000,
      'conversation_ended',
    );
    const conv = await d.client.request<Record<string, unknown>>('agent:conversation', {
      conversation_id: ended.data.conversation_id,
    });
    expect(conv).toMatchObject({ status: 'completed' });
    expect((conv.transcript as Array<{ agent_id: string; text: string }>).map((u) => [u.agent_id, u.text])).toEqual([
      ['first', 'opening words'],
      ['second', 'closing words'],
    ]);
  });
});
