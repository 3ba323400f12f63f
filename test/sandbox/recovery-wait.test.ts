/**
 * The daemon's start waits for the engine's ping only; the recovery after it runs in the background
 * and sandbox requests wait for it. Against an engine that answers pings and hangs on everything
 * else (no Docker needed): the start returns at once, status still answers, an exec waits instead of
 * failing until its caller gives up, and a shutdown is not held past its deadline. Once a call has
 * gone unanswered for `engine_timeout_ms` the engine is reported as not responding (never
 * `reachable: true`), what waits on it fails with UNAVAILABLE, and it is back once it answers again.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../plugins/sandbox/config.js';
import { SandboxService } from '../../plugins/sandbox/service.js';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-sbx-hang-'));
const sock = path.join(home, 'docker.sock');
const seen: string[] = [];
const hung = new Set<http.ServerResponse>();
let hang = true;
const engine = http.createServer((req, res) => {
  seen.push(`${req.method} ${req.url}`);
  const url = req.url ?? '';
  if (url.endsWith('/_ping')) res.end('OK');
  else if (hang)
    hung.add(res); // never answered
  // Answering again: just enough of the API for the sandbox's recovery.
  else if (url.includes('/containers/json')) res.end('[]');
  else if (url.includes('/version')) res.end(JSON.stringify({ Version: 'fake', ApiVersion: '1.41' }));
  else if (url.includes('/events')) res.writeHead(200, { 'Content-Type': 'application/json' }).flushHeaders();
  else if (url.includes('/images/')) res.end('{}');
  else res.writeHead(404).end('{"message":"not in this fake"}');
});

beforeAll(() => new Promise<void>((r) => engine.listen(sock, r)));

afterAll(async () => {
  for (const r of hung) r.destroy();
  engine.closeAllConnections();
  await new Promise<void>((r) => engine.close(() => r()));
  fs.rmSync(home, { recursive: true, force: true });
});

function service(extra: Record<string, unknown> = {}): { svc: SandboxService; statuses: string[] } {
  const statuses: string[] = [];
  const svc = new SandboxService({
    config: parseConfig({ docker_socket: sock, pool_size: 0, ...extra }),
    log: pino({ level: 'silent' }),
    home,
    emit: () => undefined,
    setStatus: (s) => statuses.push(s),
  });
  return { svc, statuses };
}

describe('sandbox against an engine that hangs after its ping', () => {
  it('starts at once; status answers within its bound; exec waits; stop keeps its deadline', async () => {
    const { svc, statuses } = service();
    const t0 = Date.now();
    await svc.begin();
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(svc.health()).toMatchObject({ engine_reachable: true });
    expect(statuses).not.toContain('degraded');

    let execSettled = false;
    const ac = new AbortController();
    const exec = svc
      .exec({ language: 'bash', code: 'true' }, { signal: ac.signal })
      .finally(() => (execSettled = true))
      .catch((e: unknown) => e);

    const t1 = Date.now();
    const st = await svc.status();
    expect(Date.now() - t1).toBeGreaterThanOrEqual(2_500);
    expect(Date.now() - t1).toBeLessThan(6_000);
    expect(st).toMatchObject({ recovering: true });
    expect(execSettled).toBe(false); // waiting for the recovery, not failed

    // The caller giving up ends its wait (it would otherwise wait for a recovery that never ends).
    ac.abort();
    expect(await exec).toMatchObject({ code: 'CANCELLED' });

    const t2 = Date.now();
    await svc.stop(Date.now() + 2_000);
    expect(Date.now() - t2).toBeLessThan(4_000);
    expect(seen.some((s) => s.startsWith('GET /_ping'))).toBe(true);
    expect(seen.some((s) => s.includes('/containers/json'))).toBe(true); // the recovery did start
  }, 20_000);

  it('past engine_timeout_ms it is not responding (degraded, unreachable, UNAVAILABLE), and back once it answers', async () => {
    const { svc, statuses } = service({
      engine_timeout_ms: 500,
      probe_min_ms: 100,
      probe_max_ms: 200,
      health_interval_ms: 200,
    });
    await svc.begin();
    const exec = svc.exec({ language: 'bash', code: 'true' }).catch((e: unknown) => e);
    // The probe notices the recovery's unanswered calls, and cuts them off so the exec stops waiting.
    expect(await exec).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('not responding') });
    expect(statuses.at(-1)).toBe('degraded');
    expect(svc.health()).toMatchObject({ engine_reachable: false });
    const st = await svc.status();
    expect(st).toMatchObject({
      status: 'degraded',
      engine: {
        reachable: false,
        reason: expect.stringMatching(/^docker engine not responding: GET \/\S+ unanswered for \d+ s$/),
      },
    });
    // Pings alone do not bring it back: it stays down while calls still go unanswered.
    const pings = () => seen.filter((x) => x.endsWith('/_ping')).length;
    const before = pings();
    await vi.waitFor(() => expect(pings()).toBeGreaterThanOrEqual(before + 3), { timeout: 5_000, interval: 20 });
    expect(svc.health()).toMatchObject({ engine_reachable: false });

    hang = false;
    await expect.poll(() => statuses.at(-1), { timeout: 5_000, interval: 50 }).toBe('ok');
    expect(svc.health()).toMatchObject({ engine_reachable: true });
    await svc.stop(Date.now() + 2_000);
  }, 20_000);
});
