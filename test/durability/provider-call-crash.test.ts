/**
 * kill -9 while a call to an OpenAI-compatible provider is in flight, then restart on the same home:
 * as for Anthropic (model-call-crash.test.ts), the call is made again at most once, under the same
 * request_id, and charged once, by the call that answered. The completion service's one recovery path
 * does it for every provider; this checks the chat completions path goes through it, an agent's turn
 * and an alias with fallbacks included.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, tempHome, type DaemonHandle } from '../helpers/daemon-process.js';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import { startOpenAIChatServer, type OpenAIChatServer } from '../fixtures/openai-chat-server.js';
import { agentConfig, KEY } from '../agent/helpers.js';
import { waitFor } from '../helpers/events.js';

let anthropic: MessagesApiServer;
let chat: OpenAIChatServer;
const daemons: DaemonHandle[] = [];

beforeAll(async () => {
  anthropic = await startMessagesApiServer();
  chat = await startOpenAIChatServer();
});
afterAll(async () => {
  for (const d of daemons) if (d.proc.exitCode === null && d.proc.signalCode === null) await d.kill('SIGKILL');
  await Promise.all([anthropic?.close(), chat?.close()]);
});

async function start(home: string): Promise<DaemonHandle> {
  const d = await startDaemon({
    home,
    env: { ANTHROPIC_BASE_URL: anthropic.url, ANTHROPIC_API_KEY: KEY },
    config: agentConfig({
      daemon: { disabled_plugins: ['sandbox', 'bridge', 'kg'] },
      budget: { prices: { 'test-model': { input: 1, output: 2 }, 'local/m': { input: 3, output: 6 } } },
      completion: {
        default_model: 'local/m',
        max_retries: 0,
        max_concurrency: 16,
        providers: { local: { kind: 'openai', base_url: chat.url } },
        // Anthropic first, failing: the call that is in flight at the crash is the fallback's.
        models: { resilient: { model: 'test-model', fallbacks: ['local/m'] } },
      },
    }),
    readyTimeoutMs: 60_000,
  });
  daemons.push(d);
  return d;
}

type Entry = {
  kind: string;
  request_id: string;
  model: string;
  estimated: boolean;
  reason: string | null;
  usd: number;
};

async function idle(d: DaemonHandle): Promise<boolean> {
  const st = await d.client.request('completion:status', {});
  return st.queued === 0 && st.running === 0;
}

/** At most one repeat of the same call, one charge (the answer's, at the provider model's price), nothing held. */
async function expectOneCharge(d: DaemonHandle, requestId: string): Promise<void> {
  await waitFor(() => idle(d), 15_000, 'completion queue idle');
  const calls = chat.chatRequests().map((r) => JSON.stringify(r.body));
  expect(calls.length).toBeGreaterThanOrEqual(1);
  expect(calls.length).toBeLessThanOrEqual(2);
  expect(new Set(calls).size).toBe(1);
  const entries = (
    (await d.client.request<Record<string, unknown>>('budget:ledger', { limit: 1000 })) as { entries: Entry[] }
  ).entries;
  const spend = entries.filter((e) => e.kind === 'commit' || e.kind === 'charge');
  expect(spend).toHaveLength(1);
  expect(spend[0]).toMatchObject({ kind: 'commit', request_id: requestId, model: 'local/m', estimated: false });
  expect(spend[0]!.usd).toBeGreaterThan(0);
  expect(new Set(entries.map((e) => e.request_id))).toEqual(new Set([requestId]));
  const status = (await d.client.request('budget:status', {})) as {
    scopes: Array<{ scope: string; spent_usd: number; reserved_usd: number }>;
  };
  const global = status.scopes.find((s) => s.scope === 'global')!;
  expect(global.reserved_usd).toBe(0);
  expect(global.spent_usd).toBeCloseTo(spend[0]!.usd, 9);
}

describe('kill -9 during a call to an OpenAI-compatible provider', () => {
  it('completion:request: asked again after the restart, it gets the one retried call', async () => {
    const home = tempHome('agentd-oa-crash-');
    anthropic.reset();
    chat.reset();
    chat.setHandler(() => ({ kind: 'hang' }));
    const d1 = await start(home);
    const ask = { prompt: 'name a colour', request_id: 'oa-step-1', max_tokens: 50 };
    const lost = d1.client.request('completion:request', ask, { timeoutMs: 60_000 }).catch((e: unknown) => e);
    await waitFor(() => chat.chatRequests().length === 1, 15_000, 'the call in flight');
    expect(await d1.kill('SIGKILL')).toBe('SIGKILL');
    expect(await lost).toMatchObject({ code: 'UNAVAILABLE' });

    chat.setHandler(() => ({ text: 'blue', delayMs: 300 }));
    const d2 = await start(home);
    const [a, b] = await Promise.all([
      d2.client.request('completion:request', ask, { timeoutMs: 30_000 }),
      d2.client.request('completion:request', ask, { timeoutMs: 30_000 }),
    ]);
    expect(a).toMatchObject({ request_id: 'oa-step-1', text: 'blue', model: 'local/m', attempt: 2 });
    expect(b).toMatchObject({ request_id: 'oa-step-1', text: 'blue' });
    await expectOneCharge(d2, 'oa-step-1');
    await d2.stop();
  }, 180_000);

  it('agent:send on an alias whose fallback was answering: the resumed turn joins the retried call', async () => {
    const home = tempHome('agentd-oa-crash-agent-');
    anthropic.reset();
    chat.reset();
    anthropic.setHandler(() => ({ kind: 'error', status: 529 }));
    chat.setHandler(() => ({ kind: 'hang' }));
    const d1 = await start(home);
    await d1.client.request('agent:spawn', { agent_id: 'oa-payer', model: 'resilient', system: 'Answer briefly.' });
    const lost = d1.client
      .request(
        'agent:send',
        { agent_id: 'oa-payer', message: 'what is 2+2?', turn_id: 'oa-turn-1' },
        { timeoutMs: 60_000 },
      )
      .catch((e: unknown) => e);
    await waitFor(() => chat.chatRequests().length === 1, 15_000, 'the fallback call in flight');
    expect(await d1.kill('SIGKILL')).toBe('SIGKILL');
    expect(await lost).toMatchObject({ code: 'UNAVAILABLE' });

    chat.setHandler(() => ({ text: 'four', delayMs: 300 }));
    const d2 = await start(home);
    const r = await d2.client.request(
      'agent:send',
      { agent_id: 'oa-payer', message: 'what is 2+2?', turn_id: 'oa-turn-1' },
      { timeoutMs: 30_000 },
    );
    expect(r).toMatchObject({ turn_id: 'oa-turn-1', status: 'completed', reply: 'four', steps: 1 });
    // The rerun starts at the head of the alias again: Anthropic is still overloaded, so the fallback answers.
    expect(anthropic.messageRequests()).toHaveLength(2);
    const entries = (
      (await d2.client.request<Record<string, unknown>>('budget:ledger', { limit: 1000 })) as { entries: Entry[] }
    ).entries;
    const releases = entries.filter((e) => e.kind === 'release').map((e) => [e.model, e.reason]);
    expect(releases).toContainEqual(['test-model', 'fallback']);
    await expectOneCharge(d2, 'oa-turn-1.s0');
    await d2.stop();
  }, 180_000);
});
