import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, tempHome } from '../helpers/daemon-process.js';
import { kernelConfig } from './kit.js';

const home = tempHome('agentd-ctl-');
fs.writeFileSync(path.join(home, 'agentd.yaml'), kernelConfig());
const env = { ...process.env, AGENTD_HOME: home, AGENTD_CONFIG: path.join(home, 'agentd.yaml') };
delete (env as Record<string, unknown>).AGENTD_SOCKET;

const ctl = (...args: string[]) => {
  const r = spawnSync(path.join(ROOT, 'daemon-control.ts'), args, {
    cwd: ROOT,
    env,
    encoding: 'utf8',
    timeout: 90_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

afterAll(() => {
  ctl('stop');
});

describe('daemon-control', () => {
  it('start → health → emit → stop, with exit codes scripts can trust', () => {
    const start = ctl('start');
    expect(start.code, start.err).toBe(0);
    expect(start.out).toMatch(/pid \d+/);
    expect(start.out).toContain(path.join(home, 'run', 'daemon.sock'));

    expect(ctl('start').code).toBe(1); // a second daemon is refused

    const health = ctl('health');
    expect(health.code).toBe(0);
    expect(health.out).toMatch(/status: healthy/);
    const json = JSON.parse(ctl('health', '--json').out);
    expect(json).toMatchObject({ healthy: true, status: 'healthy' });

    const ping = ctl('emit', 'system:ping');
    expect(ping.code).toBe(0);
    expect(JSON.parse(ping.out)).toEqual({ pong: true });
    const bad = ctl('emit', 'system:pnig');
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.err).error.code).toBe('UNKNOWN_EVENT');
    expect(ctl('emit', 'system:ping', '{not json').code).toBe(2);

    expect(ctl('status').code).toBe(0);
    const logs = ctl('logs', '-n', '5');
    expect(logs.code).toBe(0);
    expect(logs.out).toMatch(/"msg":/);

    const stop = ctl('stop');
    expect(stop.code).toBe(0);
    expect(stop.out).toMatch(/stopped gracefully/);
    expect(ctl('health').code).toBe(1);
    expect(ctl('status').code).toBe(1);
    expect(ctl('stop').code).toBe(1);
  }, 240_000);

  it('exits 2 on usage errors', () => {
    expect(ctl().code).toBe(2);
    expect(ctl('frobnicate').code).toBe(2);
    expect(ctl('emit').code).toBe(2);
  }, 120_000);
});

describe('daemon-control with daemon.socket set in agentd.yaml', () => {
  const home2 = tempHome('agentd-ctl-sock-');
  const sock = path.join(home2, 'elsewhere', 'agentd.sock');
  fs.writeFileSync(path.join(home2, 'agentd.yaml'), kernelConfig(`  socket: ${JSON.stringify(sock)}\n`));
  const env2 = { ...env, AGENTD_HOME: home2, AGENTD_CONFIG: path.join(home2, 'agentd.yaml') };
  const ctl2 = (...args: string[]) => {
    const r = spawnSync(path.join(ROOT, 'daemon-control.ts'), args, {
      cwd: ROOT,
      env: env2,
      encoding: 'utf8',
      timeout: 90_000,
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  afterAll(() => {
    ctl2('stop');
  });

  it('finds the daemon where the config put its socket: start, status, stop', () => {
    const start = ctl2('start');
    expect(start.code, start.err).toBe(0);
    expect(start.out).toContain(sock);
    expect(fs.existsSync(sock)).toBe(true);
    const status = ctl2('status');
    expect(status.code, status.err).toBe(0);
    expect(status.out).toContain(sock);
    expect(ctl2('stop').code).toBe(0);
    expect(fs.existsSync(sock)).toBe(false);
  }, 240_000);
});
