/** Without an API key the daemon still starts; completion calls say how to configure one. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';
import { codeOf, errorOf, testConfig } from './helpers.js';

let d: DaemonHandle;
beforeAll(async () => {
  d = await startDaemon({
    env: { ANTHROPIC_API_KEY: '', ANTHROPIC_BASE_URL: 'http://127.0.0.1:9', AGENTD_COMPLETION_MAX_CONCURRENCY: '3' },
    config: testConfig({ budget: { limits: [{ scope: 'global', period: 'monthly', limit_usd: 100 }] } }),
    readyTimeoutMs: 90_000,
  });
}, 120_000);
afterAll(async () => {
  await d?.stop();
});

it('starts degraded and answers UNAVAILABLE with the way to configure a key (env overrides apply)', async () => {
  const plugins = (await d.client.request('plugin:list', {})) as {
    plugins: Array<{ name: string; status: string; reason: string | null; reason_code: string | null }>;
  };
  const c = plugins.plugins.find((p) => p.name === 'completion')!;
  expect(c).toMatchObject({ status: 'degraded', reason_code: 'NOT_CONFIGURED' });
  // The text tells a person what to set.
  expect(c.reason).toContain('ANTHROPIC_API_KEY');
  for (const ev of ['completion:request', 'completion:async']) {
    const e = await errorOf(d.client.request(ev, { prompt: 'hi' }));
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toMatch(/ANTHROPIC_API_KEY/);
    expect(e.message).toMatch(/api_key_file/);
  }
  // the rest still works
  expect(await d.client.request('completion:status', {})).toMatchObject({
    queued: 0,
    max_concurrency: 3,
    provider: { configured: false },
  });
  expect(await codeOf(d.client.request('completion:status', { request_id: 'x' }))).toBe('NOT_FOUND');
  // limits from agentd.yaml are applied at start
  const b = (await d.client.request('budget:status', {})) as { scopes: Array<Record<string, unknown>> };
  expect(b.scopes).toContainEqual(
    expect.objectContaining({ scope: 'global', period: 'monthly', limit_usd: 100, spent_usd: 0 }),
  );
});
