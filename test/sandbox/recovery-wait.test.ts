/**
 * The daemon's start waits for the engine's ping only; the recovery after it runs in the background
 * and sandbox requests wait for it. Against an engine that answers pings and hangs on everything
 * else (no Docker needed): the start returns at once, status still answers (saying the recovery is
 * running), an exec waits instead of failing until its caller gives up, and a shutdown is not held
 * past its deadline.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../plugins/sandbox/config.js';
import { SandboxService } from '../../plugins/sandbox/service.js';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-sbx-hang-'));
const sock = path.join(home, 'docker.sock');
const seen: string[] = [];
const hung = new Set<http.ServerResponse>();
const engine = http.createServer((req, res) => {
  seen.push(`${req.method} ${req.url}`);
  if (req.url === '/_ping') res.end('OK');
  else hung.add(res); // never answered
});

afterAll(async () => {
  for (const r of hung) r.destroy();
  await new Promise<void>((r) => engine.close(() => r()));
  fs.rmSync(home, { recursive: true, force: true });
});

describe('sandbox start against an engine that hangs after its ping', () => {
  it('starts at once; status answers within its bound; exec waits; stop keeps its deadline', async () => {
    await new Promise<void>((r) => engine.listen(sock, r));
    const statuses: string[] = [];
    const svc = new SandboxService({
      config: parseConfig({ docker_socket: sock, pool_size: 0 }),
      log: pino({ level: 'silent' }),
      home,
      emit: () => undefined,
      setStatus: (s) => statuses.push(s),
    });
    const t0 = Date.now();
    await svc.begin();
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(svc.health()).toMatchObject({ engine_reachable: true });
    expect(statuses).not.toContain('degraded');

    let execSettled = false;
    const ac = new AbortController();
    const exec = svc.exec({ language: 'bash', code: 'true' }, { signal: ac.signal }).finally(() => (execSettled = true)).catch((e: unknown) => e);

    const t1 = Date.now();
    const st = await svc.status();
    expect(Date.now() - t1).toBeGreaterThanOrEqual(2_500);
    expect(Date.now() - t1).toBeLessThan(6_000);
    expect(st).toMatchObject({ recovering: true, engine: { reachable: true } });
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
});
