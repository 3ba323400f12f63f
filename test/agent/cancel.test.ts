/**
 * agent:cancel: the running turn stops (its model call abandoned), a queued one is cancelled before it
 * runs, and the agent stays live with a history the next message can build on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import { agentConfig, collect, errorOf, KEY, waitFor } from './helpers.js';

let api: MessagesApiServer;
let d: DaemonHandle;

beforeAll(async () => {
  api = await startMessagesApiServer();
  d = await startDaemon({ env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY }, config: agentConfig() });
  await d.client.request('agent:spawn', { agent_id: 'c1' });
}, 60_000);

afterAll(async () => {
  await d?.stop();
  await api?.close();
});

describe('agent:cancel', () => {
  it('stops the running turn and cancels a queued one; the agent answers the next message', async () => {
    api.enqueue({ kind: 'hang' });
    const events = await collect(d.client, ['agent:error']);
    const running = d.client.request('agent:send', { agent_id: 'c1', message: 'first', turn_id: 'c1-t1' });
    const queued = await d.client.request('agent:send', {
      agent_id: 'c1',
      message: 'second',
      turn_id: 'c1-t2',
      wait: false,
    });
    expect(queued.status).toBe('queued');
    await waitFor(() => api.inFlight() > 0, 10_000, 'the model call');

    expect(await d.client.request('agent:cancel', { agent_id: 'c1', turn_id: 'c1-t2' })).toEqual({
      agent_id: 'c1',
      turn_id: 'c1-t2',
      cancelled: true,
      status: 'cancelled',
    });
    expect(await d.client.request('agent:cancel', { agent_id: 'c1' })).toEqual({
      agent_id: 'c1',
      turn_id: 'c1-t1',
      cancelled: true,
      status: 'cancelling',
    });
    const e = await errorOf(running);
    expect([e.code, e.details?.turn_id]).toEqual(['CANCELLED', 'c1-t1']);
    await waitFor(() => api.inFlight() === 0, 10_000, 'the model call to be abandoned');
    await waitFor(() => events.length >= 2, 10_000, 'agent:error for both turns');
    expect(events.map((x) => [x.data.turn_id, x.data.code]).sort()).toEqual([
      ['c1-t1', 'CANCELLED'],
      ['c1-t2', 'CANCELLED'],
    ]);

    // Cancelling what has ended changes nothing and says so; an idle agent has nothing to cancel.
    expect(await d.client.request('agent:cancel', { agent_id: 'c1', turn_id: 'c1-t1' })).toEqual({
      agent_id: 'c1',
      turn_id: 'c1-t1',
      cancelled: false,
      status: 'cancelled',
    });
    expect(await d.client.request('agent:cancel', { agent_id: 'c1' })).toEqual({
      agent_id: 'c1',
      turn_id: null,
      cancelled: false,
      status: 'idle',
    });

    const next = await d.client.request<{ reply: string }>('agent:send', { agent_id: 'c1', message: 'third' });
    expect(next.reply).toBe('echo: first');
    const info = await d.client.request<{ status: string; turns: Array<{ turn_id: string; status: string }> }>(
      'agent:info',
      { agent_id: 'c1' },
    );
    expect(info.status).toBe('idle');
    expect(info.turns.map((t) => [t.turn_id, t.status]).slice(1)).toEqual([
      ['c1-t2', 'cancelled'],
      ['c1-t1', 'cancelled'],
    ]);
  });

  it('names what does not exist', async () => {
    expect((await errorOf(d.client.request('agent:cancel', { agent_id: 'nobody' }))).code).toBe('NOT_FOUND');
    expect((await errorOf(d.client.request('agent:cancel', { agent_id: 'c1', turn_id: 'no-such-turn' }))).code).toBe(
      'NOT_FOUND',
    );
  });
});
