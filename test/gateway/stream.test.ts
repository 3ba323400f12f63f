/**
 * Live delivery through the gateway: SSE (frames, id = seq, resume with Last-Event-ID, the gap
 * when the history no longer reaches back, rate bounds) and the socket protocol over WebSocket
 * (request/response, subscriptions, errors).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { startDaemon } from '../helpers/daemon-process.js';
import { collect, startGateway, type Gateway } from './helpers.js';

let g: Gateway;

beforeAll(async () => {
  g = await startGateway({ sections: { router: { history_size: 200 } } });
});
afterAll(async () => {
  await g?.daemon.stop();
});

const emit = (n: number, event = 'fix:tick') => g.daemon.client.request('fix:emit', { n, event });

it('is off unless gateway.listen is set', async () => {
  const d = await startDaemon();
  try {
    expect(await d.client.request('gateway:status')).toMatchObject({ listening: false });
  } finally {
    await d.stop();
  }
});

describe('GET /v1/stream (SSE)', () => {
  it('answers like monitor:subscribe, then streams matching events with id = seq', async () => {
    const s = collect(g, ['fix:tick']);
    await vi.waitFor(() => expect(s.frames.length).toBeGreaterThan(0));
    const first = s.frames[0];
    expect(first).toMatchObject({ kind: 'response', event: 'monitor:subscribe', data: { patterns: ['fix:tick'] } });
    const startSeq = first.data.seq as number;
    await emit(5);
    await g.daemon.client.request('fix:emit', { n: 2, event: 'fix:rare' });
    await vi.waitFor(() => expect(s.events().length).toBe(5));
    const evs = s.events();
    expect(evs.map((e) => e.data.i)).toEqual([0, 1, 2, 3, 4]);
    expect(evs.every((e) => e.event === 'fix:tick' && e.id === String(e.seq) && e.seq! > startSeq)).toBe(true);
    expect(evs.map((e) => e.seq)).toEqual([...Array(5).keys()].map((i) => evs[0].seq! + i));
    s.close();
  });

  it("resumes after Last-Event-ID from the router's history: nothing missed, nothing twice", async () => {
    const s = collect(g, ['fix:tick']);
    await vi.waitFor(() => expect(s.frames.length).toBe(1));
    await emit(6);
    await vi.waitFor(() => expect(s.events().length).toBe(6));
    s.close();
    const resumeAfter = s.events()[2].id!;
    await emit(4);
    const r = collect(g, ['fix:tick'], { lastEventId: resumeAfter });
    await vi.waitFor(() => expect(r.events().length).toBe(7));
    expect(r.events().map((e) => e.data.i)).toEqual([3, 4, 5, 0, 1, 2, 3]);
    expect(r.events().every((e) => e.seq! > Number(resumeAfter))).toBe(true);
    expect(r.events().some((e) => e.event === 'gateway:gap')).toBe(false);
    await emit(1);
    await vi.waitFor(() => expect(r.events().length).toBe(8));
    r.close();
  });

  it('says when the gap is older than the history, then sends what the history has', async () => {
    const s = collect(g, ['fix:tick']);
    await vi.waitFor(() => expect(s.frames.length).toBe(1));
    await emit(1);
    await vi.waitFor(() => expect(s.events().length).toBe(1));
    s.close();
    const last = Number(s.events()[0].id);
    await emit(500);
    const r = collect(g, ['fix:tick'], { lastEventId: String(last) });
    await vi.waitFor(() => expect(r.events().filter((e) => e.event === 'fix:tick').length).toBe(200));
    const gap = r.events()[0];
    expect(gap.event).toBe('gateway:gap');
    expect(gap.data).toMatchObject({ last_event_id: last, first_seq: last + 1, reason: 'history' });
    const ticks = r.events().filter((e) => e.event === 'fix:tick');
    expect(ticks[0].seq).toBe((gap.data.last_seq as number) + 1);
    expect(ticks[ticks.length - 1].data.i).toBe(499);
    r.close();
  });

  it('bounds the rate with max_rate and counts the rest in monitor:skipped', async () => {
    const s = collect(g, ['fix:tick'], { maxRate: 10 });
    await vi.waitFor(() => expect(s.frames.length).toBe(1));
    expect(s.frames[0].data.max_rate).toBe(10);
    await emit(100);
    await vi.waitFor(() => expect(s.events().some((e) => e.event === 'monitor:skipped')).toBe(true), { timeout: 5000 });
    const delivered = s.events().filter((e) => e.event === 'fix:tick').length;
    const skipped = s
      .events()
      .filter((e) => e.event === 'monitor:skipped')
      .reduce((n, e) => n + (e.data.count as number), 0);
    expect(delivered).toBeLessThanOrEqual(20);
    expect(delivered + skipped).toBe(100);
    s.close();
  });

  it('refuses bad patterns with 400', async () => {
    const r = await g.get('/v1/stream?patterns=Bad!');
    expect(r.status).toBe(400);
    expect((await r.json()).error.code).toBe('INVALID_DATA');
  });
});

function openWs(headers: Record<string, string> = { authorization: `Bearer ${g.token}` }, protocols?: string[]) {
  const ws = new WebSocket(`ws://127.0.0.1:${g.port}/v1/ws`, protocols, { headers });
  const frames: Array<Record<string, any>> = [];
  ws.on('message', (m) => frames.push(JSON.parse(m.toString())));
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
  });
  const send = (f: unknown) => ws.send(typeof f === 'string' ? f : JSON.stringify(f));
  const answer = async (cid: string | number) => {
    await vi.waitFor(() => expect(frames.find((f) => f.kind === 'response' && f.correlation_id === cid)).toBeDefined());
    return frames.find((f) => f.kind === 'response' && f.correlation_id === cid)!;
  };
  return { ws, frames, opened, send, answer };
}

describe('GET /v1/ws', () => {
  it('refuses a missing or wrong token', async () => {
    await expect(openWs({}).opened).rejects.toThrow(/401/);
    await expect(openWs({ authorization: 'Bearer wrong-token-0123456789' }).opened).rejects.toThrow(/401/);
  });

  it("answers requests by correlation_id, concurrently, with the socket's frames and errors", async () => {
    const c = openWs();
    await c.opened;
    c.send({ event: 'fix:sleep', data: { ms: 300 }, correlation_id: 'slow' });
    c.send({ event: 'system:ping', correlation_id: 7 });
    const ping = await c.answer(7);
    expect(ping).toMatchObject({ kind: 'response', event: 'system:ping', data: { pong: true } });
    expect(c.frames.find((f) => f.correlation_id === 'slow')).toBeUndefined();
    expect((await c.answer('slow')).data).toEqual({ slept: 300 });
    c.send({ event: 'kg:get', data: { id: 'absent' }, correlation_id: 'nf' });
    expect((await c.answer('nf')).error.code).toBe('NOT_FOUND');
    c.send({ event: 'fix:sleep', data: { ms: 2000 }, timeout_ms: 50, correlation_id: 'to' });
    expect((await c.answer('to')).error.code).toBe('TIMEOUT');
    c.send('{not json');
    await vi.waitFor(() => expect(c.frames.some((f) => f.error?.code === 'BAD_JSON')).toBe(true));
    c.send({ event: 'NOPE', correlation_id: 'bf' });
    expect((await c.answer('bf')).error.code).toBe('BAD_FRAME');
    c.send({ event: 'plugin:restore', data: { states: {} }, correlation_id: 'int' });
    expect((await c.answer('int')).error.code).toBe('UNKNOWN_EVENT');
    c.ws.close();
  });

  it('takes the token as a subprotocol from a browser, and answers with the plain one', async () => {
    const c = openWs({}, ['agentd.v1', `agentd.bearer.${g.token}`]);
    await c.opened;
    expect(c.ws.protocol).toBe('agentd.v1');
    c.send({ event: 'system:ping', correlation_id: 1 });
    expect((await c.answer(1)).data).toEqual({ pong: true });
    c.ws.close();
  });

  it('subscribes, delivers matching events after the answered seq, and unsubscribes', async () => {
    const c = openWs();
    await c.opened;
    c.send({ event: 'monitor:subscribe', data: { patterns: ['fix:tick', 'fix:*'] }, correlation_id: 's' });
    const sub = await c.answer('s');
    const id = sub.data.subscription_id as string;
    expect(sub.data.seq).toBeTypeOf('number');
    await emit(3);
    await vi.waitFor(() => expect(c.frames.filter((f) => f.kind === 'event').length).toBe(3));
    const evs = c.frames.filter((f) => f.kind === 'event');
    expect(evs.every((e) => e.subscription === id && e.seq > sub.data.seq && e.event === 'fix:tick')).toBe(true);
    c.send({ event: 'monitor:subscribe', data: { patterns: ['Bad'] }, correlation_id: 'bad' });
    expect((await c.answer('bad')).error.code).toBe('INVALID_DATA');
    c.send({ event: 'monitor:unsubscribe', data: { subscription_id: id }, correlation_id: 'u' });
    expect((await c.answer('u')).data).toEqual({ unsubscribed: id });
    c.send({ event: 'monitor:unsubscribe', data: { subscription_id: id }, correlation_id: 'u2' });
    expect((await c.answer('u2')).error.code).toBe('NOT_FOUND');
    await emit(2);
    c.send({ event: 'system:ping', correlation_id: 'after' });
    await c.answer('after');
    expect(c.frames.filter((f) => f.kind === 'event').length).toBe(3);
    c.ws.close();
  });

  it('closes a message over the size limit (1009) without harming the gateway', async () => {
    const c = openWs();
    await c.opened;
    // Just over the limit: the whole message fits in loopback buffers, so the server's close frame is read before any reset.
    const closed = new Promise<number>((resolve) => c.ws.once('close', (code) => resolve(code)));
    c.send({ event: 'system:ping', data: { pad: 'x'.repeat(1024 * 1024 + 1024) } });
    expect(await closed).toBe(1009);
    expect((await g.post('system:ping')).status).toBe(200);
  });
});
