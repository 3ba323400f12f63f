/**
 * The operator scripts: usage errors, status answers, and the image build's idempotence (it must skip
 * at once when the image exists). `dockerd.sh stop` is not exercised: on a shared machine it would
 * stop the engine everyone's tests use.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from '../helpers/daemon-process.js';
import { describeDocker, IMAGE } from './docker-env.js';

const script = (name: string, ...args: string[]) => {
  const r = spawnSync('bash', [path.join(ROOT, 'scripts', name), ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout + r.stderr };
};

it('scripts answer usage errors with exit 2', () => {
  expect(script('dockerd.sh').code).toBe(2);
  expect(script('dockerd.sh', 'bogus').code).toBe(2);
  expect(script('sandbox-image.sh').code).toBe(2);
  expect(script('sandbox-image.sh', 'build', '--bogus').code).toBe(2);
});

describeDocker('operator scripts against the engine', () => {
  it('dockerd.sh status and start succeed when an engine runs (start is a no-op then)', () => {
    expect(script('dockerd.sh', 'status')).toMatchObject({ code: 0, out: expect.stringContaining('running') });
    expect(script('dockerd.sh', 'start')).toMatchObject({ code: 0, out: expect.stringContaining('already running') });
  }, 30_000);

  it('dockerd.sh stop leaves an engine started for another caller running', () => {
    const pid = spawnSync('pidof', ['dockerd'], { encoding: 'utf8' }).stdout.trim().split(' ')[0];
    if (!pid) return; // a remote or system-managed engine: nothing of ours to stop anyway
    const pidfile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sbx-pid-')), 'dockerd.pid');
    fs.writeFileSync(pidfile, `${pid} 1\n`); // "started for" pid 1: not this caller
    const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'dockerd.sh'), 'stop'], {
      encoding: 'utf8',
      env: { ...process.env, AGENTD_DOCKERD_PIDFILE: pidfile },
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('leaving it running');
    expect(script('dockerd.sh', 'status').code).toBe(0);
  }, 30_000);

  it('sandbox-image.sh: status tells present from missing; build skips an existing image at once', () => {
    expect(script('sandbox-image.sh', 'status', '--tag', IMAGE).code).toBe(0);
    expect(script('sandbox-image.sh', 'status', '--tag', 'agentd-no-such-image:never').code).toBe(1);
    const t0 = Date.now();
    expect(script('sandbox-image.sh', 'build', '--tag', IMAGE)).toMatchObject({
      code: 0,
      out: expect.stringContaining('already exists'),
    });
    expect(Date.now() - t0).toBeLessThan(10_000);
  }, 30_000);
});
