/**
 * Secrets inside URLs never show: one function (daemon/redact.ts) cleans every URL the daemon shows,
 * checked here on each URL shape a config value can take, and end to end with a password in every
 * config value that holds a URL (kg.neo4j.uri, bridge.url, completion.base_url): not in daemon.log,
 * system:health, plugin:list, bridge:status, the error answers, or the event history.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { redactDeep, redactSecrets } from '../../daemon/redact.js';
import { startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';
import { waitFor } from '../helpers/events.js';

describe('redactSecrets', () => {
  it.each([
    // kg.neo4j.uri
    ['bolt://neo4j:s3cret@127.0.0.1:7687', 'bolt://neo4j:***@127.0.0.1:7687'],
    ['neo4j+s://neo4j:p%40ss%3Aword@db.example.com', 'neo4j+s://neo4j:***@db.example.com'],
    ['neo4j://neo4j:p@ss@db.example.com:7687/?routing=x', 'neo4j://neo4j:***@db.example.com:7687/?routing=x'],
    // bridge.url: several servers, user:password and token forms
    ['nats://user:pw1@h1:4222,nats://t0ken@h2:4222', 'nats://user:***@h1:4222,nats://***@h2:4222'],
    ['tls://user:pw@[::1]:4222', 'tls://user:***@[::1]:4222'],
    // completion.base_url and provider base_urls (completion.providers.<name>.base_url)
    ['http://apiuser:k3y@127.0.0.1:8080/v1', 'http://apiuser:***@127.0.0.1:8080/v1'],
    ['https://proxy.local/v1?api_key=sk-123&model=x', 'https://proxy.local/v1?api_key=***&model=x'],
    ['https://proxy.local/v1?x=1&access_token=abc#frag', 'https://proxy.local/v1?x=1&access_token=***#frag'],
    ['https://:onlypw@host/', 'https://:***@host/'],
    // inside a message that quotes it
    [
      'neo4j unreachable at bolt://neo4j:s3cret@127.0.0.1:1: connect ECONNREFUSED',
      'neo4j unreachable at bolt://neo4j:***@127.0.0.1:1: connect ECONNREFUSED',
    ],
    // nothing to hide
    ['http://127.0.0.1:8080/v1', 'http://127.0.0.1:8080/v1'],
    ['no url here: a=b', 'no url here: a=b'],
  ])('%s', (input, expected) => {
    expect(redactSecrets(input)).toBe(expected);
  });

  it('walks objects and arrays, and returns the same value when there is nothing to change', () => {
    const clean = { a: 'http://h/x', b: [1, 'two'] };
    expect(redactDeep(clean)).toBe(clean);
    expect(redactDeep({ neo4j: { uri: 'bolt://u:p@h', ready: false }, list: ['nats://t@h'] })).toEqual({
      neo4j: { uri: 'bolt://u:***@h', ready: false },
      list: ['nats://***@h'],
    });
  });
});

describe('a password in every config value that holds a URL', () => {
  const secrets = { neo4j: 'n3o4jPW', nats: 'n4tsPW', api: 'b4seurlPW' };
  let d: DaemonHandle;
  afterAll(async () => {
    await d?.stop();
  });

  it('is shown nowhere', async () => {
    d = await startDaemon({
      config: 'daemon:\n  disabled_plugins: [sandbox, agent, checkpoint]\n',
      env: {
        AGENTD_KG_BACKEND: 'neo4j',
        AGENTD_KG_NEO4J__URI: `bolt://neo4j:${secrets.neo4j}@127.0.0.1:1`,
        AGENTD_KG_NEO4J__PASSWORD: 'given-apart-too',
        AGENTD_BRIDGE_URL: `nats://fleet:${secrets.nats}@127.0.0.1:1`,
        AGENTD_BRIDGE_NODE: 'n1',
        AGENTD_COMPLETION_BASE_URL: `http://apiuser:${secrets.api}@127.0.0.1:1`,
        AGENTD_COMPLETION_MAX_RETRIES: '0',
        ANTHROPIC_API_KEY: 'sk-ant-test',
        AGENTD_BUDGET_PRICES__TEST_MODEL__INPUT: '1',
      },
      readyTimeoutMs: 60_000,
    });
    const c = d.client;
    const shown: unknown[] = [];
    await waitFor(
      async () => {
        const h = await c.request('system:health');
        const p = h.plugins as Record<string, { status: string }>;
        return p.kg?.status === 'degraded' && p.bridge?.status !== 'ok' ? h : null;
      },
      30_000,
      'kg and bridge down',
    );
    shown.push(await c.request('system:health'), await c.request('plugin:list'));
    shown.push(await c.request('bridge:status').catch((e: unknown) => e));
    shown.push(await c.request('kg:stats').catch((e: unknown) => e));
    shown.push(
      await c
        .request(
          'completion:request',
          { prompt: 'hi', model: 'claude-sonnet-4-5', max_tokens: 10 },
          { timeoutMs: 30_000 },
        )
        .catch((e: unknown) => e),
    );
    shown.push(await c.request('monitor:events', { limit: 10_000 }));
    const text = JSON.stringify(shown, (_k, v: unknown) =>
      v instanceof Error ? { message: v.message, ...(v as unknown as Record<string, unknown>) } : v,
    );
    // They were shown, with their URLs...
    expect(text).toContain('127.0.0.1:1');
    expect(text).toMatch(/neo4j unreachable at bolt:\/\/neo4j:\*\*\*@127\.0\.0\.1:1/);
    expect(text).toContain('nats://fleet:***@127.0.0.1:1');
    // ...and never with a password.
    await d.stop();
    const log = fs.readFileSync(path.join(d.home, 'logs', 'daemon', 'daemon.log'), 'utf8');
    expect(log).toContain('127.0.0.1:1');
    for (const s of [...Object.values(secrets), 'given-apart-too']) {
      expect(text).not.toContain(s);
      expect(log).not.toContain(s);
      expect(d.output()).not.toContain(s);
    }
  }, 120_000);
});
