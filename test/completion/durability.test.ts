/**
 * Nothing accepted is lost: kill -9 with hundreds of requests queued and some in flight, restart on
 * the same home, and every accepted request has exactly one outcome; completed work is never rerun
 * and no result is emitted twice. Graceful shutdown finishes or hands back in-flight calls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, tempHome, type DaemonHandle } from '../helpers/daemon-process.js';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import { codeOf, collect, testConfig, waitFor } from './helpers.js';
import type { EventFrame } from '../../client/protocol.js';

let api: MessagesApiServer;
const daemons: DaemonHandle[] = [];

beforeAll(async () => {
  api = await startMessagesApiServer();
});
afterAll(async () => {
  for (const d of daemons) if (d.proc.exitCode === null && d.proc.signalCode === null) await d.kill('SIGKILL');
  await api?.close();
});

const env = () => ({ ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: 'test' });
async function start(
  home: string,
  extra: Record<string, Record<string, unknown>> = {},
  envExtra: Record<string, string> = {},
): Promise<DaemonHandle> {
  const d = await startDaemon({
    home,
    env: { ...env(), ...envExtra },
    config: testConfig(extra),
    readyTimeoutMs: 90_000,
  });
  daemons.push(d);
  return d;
}

const promptOf = (r: { body: Record<string, unknown> }): string => {
  const msgs = r.body.messages as Array<{ role: string; content: unknown }>;
  return String(msgs[msgs.length - 1]!.content);
};

async function history(d: DaemonHandle, patterns: string[]): Promise<EventFrame[]> {
  const r = (await d.client.request<Record<string, unknown>>('monitor:events', { patterns, limit: 10_000 })) as {
    events: EventFrame[];
  };
  return r.events;
}

async function drained(d: DaemonHandle): Promise<boolean> {
  const st = await d.client.request('completion:status', {});
  return st.queued === 0 && st.running === 0;
}

describe('kill -9', () => {
  it('hundreds of queued requests: every accepted one has exactly one outcome afterwards', async () => {
    const home = tempHome('agentd-crash-');
    api.reset();
    api.setHandler(() => ({ text: 'done', delayMs: 25 }));
    const d1 = await start(home, { completion: { max_concurrency: 4 } });
    const ev1 = await collect(d1.client, ['completion:result', 'completion:error']);
    const N = 300;
    // Fire all without waiting: the crash may well come while some are still being accepted.
    const acks: Array<Record<string, unknown>> = [];
    const sends = Array.from({ length: N }, (_, i) =>
      d1.client
        .request('completion:async', { prompt: `job-${i}`, session_id: `s-${i % 30}`, request_id: `job-${i}` })
        .then(
          (a) => void acks.push(a),
          () => undefined,
        ),
    );
    await waitFor(
      () => ev1.filter((e) => e.event === 'completion:result').length >= 40,
      30_000,
      '40 results before the crash',
    );
    expect(await d1.kill('SIGKILL')).toBe('SIGKILL');
    await Promise.all(sends);
    expect(acks.length).toBeGreaterThan(40);
    expect(acks.every((a) => a.status === 'queued')).toBe(true);
    const sentBefore = new Set(api.messageRequests().map(promptOf));
    const done1 = new Set(ev1.filter((e) => e.event === 'completion:result').map((e) => String(e.data.request_id)));
    expect(done1.size).toBeLessThan(N); // the crash really interrupted the work

    api.reset();
    api.setHandler(() => ({ text: 'done' }));
    const d2 = await start(home, { completion: { max_concurrency: 4 } });
    await waitFor(() => drained(d2), 30_000, 'queue drained after restart');
    const ev2 = await history(d2, ['completion:result', 'completion:error']);

    const statuses = await Promise.all(
      acks.map((a) => d2.client.request('completion:status', { request_id: String(a.request_id) })),
    );
    // a request whose ack never arrived was either accepted (and then ran) or left no trace
    const ackedIds = new Set(acks.map((a) => String(a.request_id)));
    for (let i = 0; i < N; i++) {
      if (ackedIds.has(`job-${i}`)) continue;
      const st = await d2.client
        .request('completion:status', { request_id: `job-${i}` })
        .catch((e: { code: string }) => ({ status: e.code }));
      expect(['completed', 'NOT_FOUND'], `job-${i}`).toContain(st.status);
    }
    const resultCount = new Map<string, number>();
    for (const e of [...ev1, ...ev2]) {
      if (e.event === 'completion:result')
        resultCount.set(String(e.data.request_id), (resultCount.get(String(e.data.request_id)) ?? 0) + 1);
    }
    let silent = 0;
    for (const st of statuses) {
      const id = String(st.request_id);
      // exactly one terminal outcome, recorded
      expect(st.status, id).toBe('completed');
      // never emitted twice
      expect(resultCount.get(id) ?? 0, id).toBeLessThanOrEqual(1);
      if (!resultCount.has(id)) silent++; // recorded, but the crash came between the record and the emit
    }
    expect(silent).toBeLessThanOrEqual(4);
    // completed work is never run again
    const rerun = api
      .messageRequests()
      .map(promptOf)
      .filter((p) => done1.has(p));
    expect(rerun).toEqual([]);
    // requests in flight at the crash ran once more, as attempt 2; all others once
    const retried = statuses.filter((s) => s.attempts === 2).map((s) => String(s.request_id));
    expect(retried.length).toBeGreaterThan(0);
    expect(retried.length).toBeLessThanOrEqual(4);
    // every call the API had seen without a result in the first run was either recorded silently
    // (crash between record and emit) or run once more; a retried one may also have been killed
    // between its 'running' mark and the HTTP request
    for (const id of sentBefore) {
      if (done1.has(id)) continue;
      const st = statuses.find((x) => x.request_id === id)!;
      expect(st.attempts === 2 || (st.attempts === 1 && !resultCount.has(id)), id).toBe(true);
    }
    // a call run once more is charged once, by its rerun: the lost attempt's reservation is released
    // (never charged as a worst-case estimate on top), and nothing stays reserved
    const budget = (await d2.client.request('budget:status', {})) as { scopes: Array<{ reserved_usd: number }> };
    expect(budget.scopes[0]!.reserved_usd).toBe(0);
    const charges = (await d2.client.request('budget:ledger', { kind: 'charge', limit: 100 })) as {
      entries: unknown[];
    };
    expect(charges.entries).toEqual([]);
    for (const id of retried) {
      const l = (await d2.client.request<Record<string, unknown>>('budget:ledger', { request_id: id })) as {
        entries: Array<{ kind: string; attempt: number; reason: string | null }>;
      };
      const first = l.entries.filter((e) => e.attempt === 1);
      // attempt 1: reserved then released, or settled before the crash, or killed before reserving
      expect([['release', 'reserve'], ['commit', 'reserve'], []]).toContainEqual(first.map((e) => e.kind));
      if (first[0]?.kind === 'release') expect(first[0].reason).toBe('daemon_restart_retried');
      expect(l.entries.filter((e) => e.attempt === 2).map((e) => e.kind)).toEqual(['commit', 'reserve']);
    }
    await d2.stop();
  }, 240_000);

  it('with restart_policy fail, calls in flight fail with reason daemon_restart; queued ones still run', async () => {
    const home = tempHome('agentd-crash-fail-');
    api.reset();
    api.setHandler((r) => (promptOf(r).startsWith('hang') ? { kind: 'hang' } : { text: 'ok' }));
    const d1 = await start(home, { completion: { max_concurrency: 2, restart_policy: 'fail', max_queue: 1 } });
    await d1.client.request('completion:async', { prompt: 'hang-a', request_id: 'fa', session_id: 'x' });
    await d1.client.request('completion:async', { prompt: 'hang-b', request_id: 'fb', session_id: 'y' });
    await d1.client.request('completion:async', { prompt: 'after', request_id: 'fc', session_id: 'x' });
    await waitFor(() => api.inFlight() === 2, 5000, 'two calls in flight');
    // max_queue 1: fc fills the queue, one more is OVERLOADED and changes nothing
    expect(await codeOf(d1.client.request('completion:async', { prompt: 'more', request_id: 'fd' }))).toBe(
      'OVERLOADED',
    );
    expect(await codeOf(d1.client.request('completion:status', { request_id: 'fd' }))).toBe('NOT_FOUND');
    await d1.kill('SIGKILL');

    const d2 = await start(home, { completion: { max_concurrency: 2, restart_policy: 'fail' } });
    await waitFor(
      async () => (await d2.client.request('completion:status', { request_id: 'fc' })).status === 'completed',
      10_000,
    );
    for (const id of ['fa', 'fb']) {
      const st = await d2.client.request('completion:status', { request_id: id });
      expect(st).toMatchObject({ status: 'failed', error: { code: 'UNAVAILABLE', reason: 'daemon_restart' } });
    }
    const errs = (await history(d2, ['completion:error'])).map((e) => e.data);
    expect(errs.map((e) => e.request_id).sort()).toEqual(['fa', 'fb']);
    expect(errs.every((e) => (e.error as { reason?: string }).reason === 'daemon_restart')).toBe(true);
    await d2.stop();
  }, 180_000);
});

describe('restart without a key', () => {
  it('keeps accepted requests queued until a start that has one', async () => {
    const home = tempHome('agentd-nokey-');
    api.reset();
    api.setHandler(() => ({ kind: 'hang' }));
    const d1 = await start(home, { completion: { max_concurrency: 1 } });
    await d1.client.request('completion:async', { prompt: 'k1', request_id: 'k1', session_id: 'k' });
    await d1.client.request('completion:async', { prompt: 'k2', request_id: 'k2', session_id: 'k' });
    await waitFor(() => api.inFlight() === 1, 5000);
    await d1.kill('SIGKILL');
    const d2 = await start(home, {}, { ANTHROPIC_API_KEY: '' });
    expect(await d2.client.request('completion:status', { request_id: 'k2' })).toMatchObject({ status: 'queued' });
    expect(await d2.client.request('completion:status', {})).toMatchObject({ queued: 2, running: 0 });
    await d2.stop();
    api.setHandler(() => ({ text: 'keyed' }));
    const d3 = await start(home);
    await waitFor(() => drained(d3), 10_000);
    expect(await d3.client.request('completion:status', { request_id: 'k1' })).toMatchObject({
      status: 'completed',
      attempts: 2,
    });
    expect(await d3.client.request('completion:status', { request_id: 'k2' })).toMatchObject({
      status: 'completed',
      attempts: 1,
    });
    await d3.stop();
  }, 240_000);
});

describe('plugin:reload', () => {
  it('reloading completion (dev mode) loses nothing and runs nothing twice', async () => {
    api.reset();
    api.setHandler(() => ({ text: 'r', delayMs: 200 }));
    const d = await start(tempHome('agentd-reload-'), { completion: { max_concurrency: 2 } });
    for (let i = 0; i < 6; i++)
      await d.client.request('completion:async', {
        prompt: `rl-${i}`,
        request_id: `rl-${i}`,
        session_id: `rl-${i % 2}`,
      });
    await waitFor(() => api.inFlight() === 2, 5000);
    await d.client.request('plugin:reload', { name: 'completion' }, { timeoutMs: 60_000 });
    await waitFor(() => drained(d), 20_000);
    for (let i = 0; i < 6; i++)
      expect(await d.client.request('completion:status', { request_id: `rl-${i}` })).toMatchObject({
        status: 'completed',
      });
    expect(api.messageRequests()).toHaveLength(6);
    await d.stop();
  }, 180_000);
});

describe('graceful shutdown', () => {
  it('lets in-flight calls finish within the deadline and keeps the rest queued for the next start', async () => {
    const home = tempHome('agentd-shutdown-');
    api.reset();
    api.setHandler(() => ({ text: 'fin', delayMs: 400 }));
    const d1 = await start(home, { completion: { max_concurrency: 2 }, daemon: { shutdown_timeout_ms: 5000 } });
    const watcher = await d1.connect(); // stays open through the shutdown, unlike d1.client
    const ev1 = await collect(watcher, ['completion:result', 'completion:error']);
    for (let i = 0; i < 6; i++)
      await d1.client.request('completion:async', { prompt: `g-${i}`, request_id: `g-${i}`, session_id: `g-${i % 2}` });
    await waitFor(() => api.inFlight() === 2, 5000, 'two in flight');
    expect(await d1.stop()).toBe(0);
    await watcher.close();
    // the two in flight finished (in this run), nothing failed
    expect(ev1.filter((e) => e.event === 'completion:error')).toEqual([]);
    expect(
      ev1
        .filter((e) => e.event === 'completion:result')
        .map((e) => e.data.request_id)
        .sort(),
    ).toEqual(['g-0', 'g-1']);

    api.setHandler(() => ({ text: 'fin' }));
    const d2 = await start(home, { completion: { max_concurrency: 2 } });
    await waitFor(() => drained(d2), 10_000);
    for (let i = 0; i < 6; i++) {
      expect(await d2.client.request('completion:status', { request_id: `g-${i}` })).toMatchObject({
        status: 'completed',
        attempts: 1,
      });
    }
    await d2.stop();
  }, 180_000);

  it('hands back a call that cannot finish before the deadline; it runs at the next start', async () => {
    const home = tempHome('agentd-shutdown-hang-');
    api.reset();
    api.setHandler(() => ({ kind: 'hang' }));
    const d1 = await start(home, { daemon: { shutdown_timeout_ms: 1500 } });
    await d1.client.request('completion:async', { prompt: 'stuck', request_id: 'stuck-1', max_tokens: 500 });
    await waitFor(() => api.inFlight() === 1, 5000);
    expect(await d1.stop()).toBe(0);

    api.setHandler(() => ({ text: 'unstuck' }));
    const d2 = await start(home);
    await waitFor(
      async () => (await d2.client.request('completion:status', { request_id: 'stuck-1' })).status === 'completed',
      10_000,
    );
    const st = await d2.client.request('completion:status', { request_id: 'stuck-1' });
    expect(st).toMatchObject({ attempts: 1, result: { text: 'unstuck' } });
    const budget = (await d2.client.request('budget:status', {})) as { scopes: Array<{ reserved_usd: number }> };
    expect(budget.scopes[0]!.reserved_usd).toBe(0);
    await d2.stop();
  }, 180_000);
});
