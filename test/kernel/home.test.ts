/**
 * The home directory is the daemon's to keep private. A home (or its run, db, logs directory) that
 * another user owns, that others can write to, or that is a symbolic link makes the daemon refuse to
 * start with a message saying which and why (exit 1), writing nothing there. What it creates is 0600
 * and 0700. A damaged agentd.db and a dangling symbolic link at the socket path fail the start with a
 * plain message from `daemon-control start` and in the log, no stack trace.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, startDaemon, tempHome, type DaemonHandle } from '../helpers/daemon-process.js';
import { kernelConfig, REAL_PLUGINS } from './kit.js';

/** A config outside the homes under test (a kernel with only the test plugins). */
const CONFIG = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-home-config-')), 'agentd.yaml');
fs.writeFileSync(CONFIG, kernelConfig());

const run = (home: string, extraEnv: Record<string, string> = {}): Promise<{ code: number | null; out: string }> =>
  new Promise((resolve) => {
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      AGENTD_HOME: home,
      AGENTD_CONFIG: CONFIG,
      ...extraEnv,
    };
    delete env.AGENTD_SOCKET;
    delete env.NODE_OPTIONS;
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'daemon', 'main.ts')], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const t = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.once('exit', (code) => (clearTimeout(t), resolve({ code, out })));
  });

const ctlStart = (home: string) => {
  fs.writeFileSync(path.join(home, 'agentd.yaml'), kernelConfig());
  const env: Record<string, string | undefined> = {
    ...process.env,
    AGENTD_HOME: home,
    AGENTD_CONFIG: path.join(home, 'agentd.yaml'),
    AGENTD_FROM_SOURCE: '1',
  };
  delete env.AGENTD_SOCKET;
  const r = spawnSync(path.join(ROOT, 'daemon-control.ts'), ['start'], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout + r.stderr };
};

const mode = (p: string): number => fs.statSync(p).mode & 0o777;
const NO_STACK = /^\s+at /m;

let d: DaemonHandle | undefined;
afterEach(async () => {
  await d?.stop();
  d = undefined;
});

describe('an unsafe home', () => {
  it.each([
    [
      'made by another user and opened to all (chmod -R 777)',
      (h: string) => {
        for (const sub of ['db', 'run', 'logs/daemon']) fs.mkdirSync(path.join(h, sub), { recursive: true });
        for (const sub of ['', 'db', 'run', 'logs', 'logs/daemon']) fs.chmodSync(path.join(h, sub), 0o777);
      },
      /writable by every local user \(mode 777\)/,
    ],
    ['owned by another user', (h: string) => fs.chownSync(h, 65534, 65534), /belongs to another user \(uid 65534/],
    [
      'with a group-writable db directory',
      (h: string) => {
        fs.mkdirSync(path.join(h, 'db'));
        fs.chmodSync(path.join(h, 'db'), 0o770);
      },
      /db is writable by its group/,
    ],
    [
      'with run a symbolic link to another directory',
      (h: string) => fs.symlinkSync(fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-other-')), path.join(h, 'run')),
      /run is a symbolic link/,
    ],
    [
      'that is itself a symbolic link',
      (h: string) => {
        const real = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-real-'));
        fs.rmdirSync(h);
        fs.symlinkSync(real, h);
      },
      /is a symbolic link/,
    ],
  ])('%s: refused with the reason, exit 1, nothing written', async (_what, make, reason) => {
    if (process.getuid?.() !== 0 && _what.includes('another user')) return; // chown needs root
    const home = tempHome('agentd-unsafe-');
    make(home);
    const r = await run(home);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/refusing to start/);
    expect(r.out).toMatch(reason);
    expect(r.out).not.toMatch(NO_STACK);
    expect(fs.existsSync(path.join(home, 'db', 'agentd.db'))).toBe(false);
    expect(fs.existsSync(path.join(home, 'logs', 'daemon', 'daemon.log'))).toBe(false);
    // A symlinked run's target is left as it was (the old daemon chmodded it and put its socket there).
    if (_what.includes('run a symbolic link'))
      expect(fs.readdirSync(fs.realpathSync(path.join(home, 'run')))).toEqual([]);
  });

  it('a safe home: files 0600, directories 0700, the socket 0600; what was left readable is tightened', async () => {
    const home = tempHome('agentd-safe-');
    fs.mkdirSync(path.join(home, 'logs', 'daemon'), { recursive: true, mode: 0o755 });
    fs.chmodSync(path.join(home, 'logs'), 0o755);
    fs.writeFileSync(path.join(home, 'logs', 'daemon', 'daemon.log'), '', { mode: 0o644 });
    fs.chmodSync(path.join(home, 'logs', 'daemon', 'daemon.log'), 0o644);
    d = await startDaemon({
      home,
      config: `daemon:\n  disabled_plugins: ${JSON.stringify(REAL_PLUGINS.filter((p) => p !== 'kg'))}\n`,
    });
    await d.client.request('kg:add_nodes', { nodes: [{ id: 'x', label: 'Concept' }] });
    for (const dir of ['', 'run', 'db', 'logs', 'logs/daemon'])
      expect(mode(path.join(home, dir)).toString(8), dir).toBe('700');
    for (const file of [
      'db/agentd.db',
      'db/agentd.db-wal',
      'db/kg.db',
      'db/kg.db-wal',
      'logs/daemon/daemon.log',
      'run/daemon.pid',
    ]) {
      expect(mode(path.join(home, file)).toString(8), file).toBe('600');
    }
    expect(mode(path.join(home, 'run', 'daemon.sock')).toString(8)).toBe('600');
  }, 60_000);
});

describe('clear messages when the start fails', () => {
  it('a damaged agentd.db: daemon-control start says so and what to do; the log says it too; no stack', () => {
    const home = tempHome('agentd-corrupt-');
    fs.mkdirSync(path.join(home, 'db'), { mode: 0o700 });
    fs.writeFileSync(path.join(home, 'db', 'agentd.db'), Buffer.alloc(16_384, 0x5a));
    const r = ctlStart(home);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/database .*agentd\.db is damaged \(file is not a database\).*Move it aside/);
    expect(r.out).not.toMatch(NO_STACK);
    const log = fs
      .readFileSync(path.join(home, 'logs', 'daemon', 'daemon.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(log.at(-1)).toMatchObject({ level: 60, msg: 'start failed', reason: expect.stringMatching(/is damaged/) });
    expect(JSON.stringify(log)).not.toMatch(/"stack"/);
  }, 90_000);

  it('a dangling symbolic link at the socket path: said plainly, and not followed', () => {
    const home = tempHome('agentd-dangling-');
    fs.mkdirSync(path.join(home, 'run'), { mode: 0o700 });
    const target = path.join(os.tmpdir(), `agentd-nowhere-${process.pid}`, 'x.sock');
    fs.symlinkSync(target, path.join(home, 'run', 'daemon.sock'));
    const r = ctlStart(home);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/socket path .*daemon\.sock is a symbolic link that points nowhere .*remove it/);
    expect(r.out).not.toMatch(NO_STACK);
    expect(fs.existsSync(path.dirname(target))).toBe(false);
  }, 90_000);
});
