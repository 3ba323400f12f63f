/**
 * kill -9 while a model call waits on the Messages API, then restart on the same home: the call is
 * made again at most once (under the same request_id), and the budget is charged exactly once, by
 * the call that answered; no worst-case estimate of the lost attempt stays charged. Asking again
 * with the same id (a resumed agent turn, a client or workflow retrying after the crash) joins the
 * call in flight or returns its recorded result; it never starts another paid call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, tempHome, type DaemonHandle } from '../helpers/daemon-process.js';
import {
  startMessagesApiServer,
  type MessagesApiServer,
  type RecordedRequest,
} from '../fixtures/messages-api-server.js';
import { agentConfig, KEY } from '../agent/helpers.js';
import { waitFor } from '../helpers/events.js';

let api: MessagesApiServer;
const daemons: DaemonHandle[] = [];

beforeAll(async () => {
  api = await startMessagesApiServer();
});
afterAll(async () => {
  for (const d of daemons) if (d.proc.exitCode === null && d.proc.signalCode === null) await d.kill('SIGKILL');
  await api?.close();
});

const env = () => ({ ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY });
const config = agentConfig({ daemon: { disabled_plugins: ['sandbox', 'bridge', 'kg'] } });

async function start(home: string): Promise<DaemonHandle> {
  const d = await startDaemon({ home, env: env(), config, readyTimeoutMs: 60_000 });
  daemons.push(d);
  return d;
}

type Entry = {
  kind: string;
  request_id: string;
  attempt: number;
  estimated: boolean;
  reason: string | null;
  usd: number;
};

async function ledger(d: DaemonHandle): Promise<Entry[]> {
  return ((await d.client.request<Record<string, unknown>>('budget:ledger', { limit: 1000 })) as { entries: Entry[] })
    .entries;
}

async function idle(d: DaemonHandle): Promise<boolean> {
  const st = await d.client.request('completion:status', {});
  return st.queued === 0 && st.running === 0;
}

/** The calls the API received, as the bodies it was sent (a repeat of a call is the same body). */
const bodies = (reqs: RecordedRequest[]): string[] => reqs.map((r) => JSON.stringify(r.body));

/** What every test checks after the restart: at most one repeat, one charge, nothing estimated or held. */
async function expectOneCharge(d: DaemonHandle, requestId: string): Promise<void> {
  await waitFor(() => idle(d), 15_000, 'completion queue idle');
  const calls = bodies(api.messageRequests());
  expect(calls.length).toBeGreaterThanOrEqual(1);
  expect(calls.length).toBeLessThanOrEqual(2);
  expect(new Set(calls).size).toBe(1); // a repeat is the same call, not a new one

  const entries = await ledger(d);
  const spend = entries.filter((e) => e.kind === 'commit' || e.kind === 'charge');
  expect(spend).toHaveLength(1);
  expect(spend[0]).toMatchObject({ kind: 'commit', request_id: requestId, estimated: false });
  // every entry is about this one request_id: the repeat ran under it, not under a new id
  expect(new Set(entries.map((e) => e.request_id))).toEqual(new Set([requestId]));
  const released = entries.filter((e) => e.kind === 'release');
  for (const r of released) expect(r.reason).toBe('daemon_restart_retried');
  const status = (await d.client.request('budget:status', {})) as {
    scopes: Array<{ scope: string; spent_usd: number; reserved_usd: number }>;
  };
  const global = status.scopes.find((s) => s.scope === 'global')!;
  expect(global.reserved_usd).toBe(0);
  expect(global.spent_usd).toBeCloseTo(spend[0]!.usd, 9);
}

describe('kill -9 during a model call', () => {
  it('agent:send: the resumed turn joins the retried call; the API sees it at most twice, the ledger one charge', async () => {
    const home = tempHome('agentd-call-crash-agent-');
    api.reset();
    api.setHandler(() => ({ kind: 'hang' }));
    const d1 = await start(home);
    await d1.client.request('agent:spawn', { agent_id: 'payer', system: 'Answer briefly.' });
    const lost = d1.client
      .request('agent:send', { agent_id: 'payer', message: 'what is 2+2?', turn_id: 'turn-1' }, { timeoutMs: 60_000 })
      .catch((e: unknown) => e);
    await waitFor(() => api.messageRequests().length === 1, 15_000, 'the model call in flight');
    expect(await d1.kill('SIGKILL')).toBe('SIGKILL');
    expect(await lost).toMatchObject({ code: 'UNAVAILABLE' });

    // The API answers from now on, a little slowly, so the resumed turn's request finds the retried call in flight.
    api.setHandler(() => ({ text: 'four', delayMs: 300 }));
    const d2 = await start(home);
    const r = await d2.client.request(
      'agent:send',
      { agent_id: 'payer', message: 'what is 2+2?', turn_id: 'turn-1' },
      { timeoutMs: 30_000 },
    );
    expect(r).toMatchObject({ turn_id: 'turn-1', status: 'completed', reply: 'four', steps: 1 });
    await expectOneCharge(d2, 'turn-1.s0');
    const info = await d2.client.request('agent:info', { agent_id: 'payer' });
    expect((info.usage as { turns: number }).turns).toBe(1);
    expect((info.usage as { cost_usd: number }).cost_usd).toBeCloseTo(r.cost_usd as number, 9);
    await d2.stop();
  }, 180_000);

  it("completion:request with the caller's request_id: asked again after the restart, it gets the one retried call", async () => {
    const home = tempHome('agentd-call-crash-completion-');
    api.reset();
    api.setHandler(() => ({ kind: 'hang' }));
    const d1 = await start(home);
    const ask = { prompt: 'name a colour', request_id: 'step-7', max_tokens: 50 };
    const lost = d1.client.request('completion:request', ask, { timeoutMs: 60_000 }).catch((e: unknown) => e);
    await waitFor(() => api.messageRequests().length === 1, 15_000, 'the model call in flight');
    expect(await d1.kill('SIGKILL')).toBe('SIGKILL');
    expect(await lost).toMatchObject({ code: 'UNAVAILABLE' });

    api.setHandler(() => ({ text: 'blue', delayMs: 300 }));
    const d2 = await start(home);
    // Twice at once, as a caller and its retry would: both join the one call in flight.
    const [a, b] = await Promise.all([
      d2.client.request('completion:request', ask, { timeoutMs: 30_000 }),
      d2.client.request('completion:request', ask, { timeoutMs: 30_000 }),
    ]);
    expect(a).toMatchObject({ request_id: 'step-7', text: 'blue' });
    expect(b).toMatchObject({ request_id: 'step-7', text: 'blue' });
    await expectOneCharge(d2, 'step-7');
    // And once more after it finished: the recorded result, no call.
    const n = api.messageRequests().length;
    expect(await d2.client.request('completion:request', ask)).toMatchObject({ request_id: 'step-7', text: 'blue' });
    expect(api.messageRequests().length).toBe(n);
    await d2.stop();
  }, 180_000);
});
