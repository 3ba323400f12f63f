/**
 * End to end in a real terminal: `daemon-control monitor` runs in a detached tmux session of 80×24,
 * keys go in with send-keys, the screen comes out with capture-pane. Also measures the monitor's
 * CPU while the daemon routes thousands of events a second (the figure is printed and bounded),
 * and checks that it still counts every one of them while its log shows a sample.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IN_CI, ROOT, type DaemonHandle } from '../helpers/daemon-process.js';
import { startMonitorDaemon, waitUntil, sleep } from './helpers.js';

const HAVE_TMUX = spawnSync('tmux', ['-V']).status === 0;
// In CI tmux is installed and these must run; elsewhere a missing tmux skips them.
const SKIP = !HAVE_TMUX && !IN_CI;
if (SKIP) console.warn('test/monitor/tmux.test.ts skipped: tmux is not installed (CI installs it)');

const SERVER = `agentd-monitor-test-${process.pid}`;
const tmux = (...args: string[]): string => {
  const r = spawnSync('tmux', ['-L', SERVER, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const screen = (session: string, escapes = false): string =>
  tmux('capture-pane', '-p', ...(escapes ? ['-e'] : []), '-t', session);
const keys = (session: string, ...k: string[]): void => void tmux('send-keys', '-t', session, ...k);
const sessionAlive = (session: string): boolean =>
  spawnSync('tmux', ['-L', SERVER, 'has-session', '-t', session]).status === 0;

/** Start `daemon-control monitor` in a new 80×24 session; its exit code lands in `exitFile`. */
function startMonitor(
  session: string,
  d: DaemonHandle,
  opts: { env?: Record<string, string>; exitFile: string },
): void {
  const env = {
    AGENTD_HOME: d.home,
    AGENTD_SOCKET: d.socketPath,
    AGENTD_CONFIG: path.join(d.home, 'agentd.yaml'),
    ...opts.env,
  };
  const assign = Object.entries(env)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(' ');
  const cmd = `cd ${JSON.stringify(ROOT)} && env ${assign} ./daemon-control.ts monitor; echo "exit=$?" > ${JSON.stringify(opts.exitFile)}`;
  tmux('new-session', '-d', '-x', '80', '-y', '24', '-s', session, cmd);
}

/** The monitor's own node process (not daemon-control's), found by its command line. */
function monitorPid(socketPath: string): number | null {
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a.endsWith('interfaces/monitor/main.tsx')) && cmd.includes(socketPath)) return Number(name);
    } catch {
      /* gone meanwhile */
    }
  }
  return null;
}

/** utime + stime of a process, in clock ticks (100 per second on Linux). */
function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

describe.skipIf(SKIP)('monitor in tmux', () => {
  let daemon: DaemonHandle;
  let tmp: string;

  beforeAll(async () => {
    daemon = await startMonitorDaemon();
    tmp = fs.mkdtempSync(path.join(daemon.home, 'tmux-'));
  });

  afterAll(async () => {
    spawnSync('tmux', ['-L', SERVER, 'kill-server']);
    await daemon?.stop();
  });

  it('draws every panel in 80×24, follows events, filters, resizes and quits with q', async () => {
    const exitFile = path.join(tmp, 'main.exit');
    startMonitor('main', daemon, { exitFile });
    const until = (ok: (s: string) => boolean, what: string, ms = 30_000): Promise<string> =>
      waitUntil(() => screen('main'), ok, ms, what);

    let s = await until(
      (x) => /agentd ● \w+/.test(x) && x.includes('q quit') && /nodes \d+ · edges \d+/.test(x),
      'the first full screen',
    );
    const lines = s.replace(/\n$/, '').split('\n');
    expect(lines).toHaveLength(24);
    expect(Math.max(...lines.map((l) => [...l].length))).toBeLessThanOrEqual(80);
    for (const title of ['Plugins', 'Agents', 'Completions', 'Budget', 'Sandbox', 'Knowledge graph', 'Events'])
      expect(s).toContain(title);
    expect(s).toMatch(/sandbox: not loaded/);

    await daemon.client.request('burst:emit', { n: 2, event: 'burst:one', data: { who: 'first' } });
    await daemon.client.request('burst:emit', { n: 2, event: 'burst:two', data: { who: 'second' } });
    s = await until(
      (x) => x.includes('burst:one i=1 who=first') && x.includes('burst:two i=1 who=second'),
      'emitted events',
    );

    keys('main', '/');
    await until((x) => x.includes('filter:'), 'the filter prompt');
    keys('main', '-l', 'burst:two');
    keys('main', 'Enter');
    s = await until((x) => x.includes('[burst:two]') && x.includes('q quit'), 'the filtered log');
    expect(s).toContain('burst:two i=0 who=second');
    expect(s).not.toContain('burst:one');

    keys('main', 'p');
    await until((x) => x.includes('PAUSED'), 'paused');
    keys('main', 'p');
    await until((x) => !x.includes('PAUSED'), 'resumed');

    tmux('resize-window', '-t', 'main', '-x', '100', '-y', '30');
    s = await until((x) => x.split('\n').some((l) => [...l].length === 100 && l.startsWith('╔')), 'the resized screen');
    expect(s.replace(/\n$/, '').split('\n')).toHaveLength(30);
    tmux('resize-window', '-t', 'main', '-x', '80', '-y', '24');
    await until((x) => x.split('\n').every((l) => [...l].length <= 80) && x.includes('q quit'), 'back to 80×24');

    // Colours are on by default (so the NO_COLOR test below can fail).
    expect(screen('main', true)).toMatch(/\x1b\[[0-9;]*3[0-7]m|\x1b\[[0-9;]*9[0-7]m/);

    keys('main', 'q');
    await waitUntil(
      () => fs.existsSync(exitFile) && fs.readFileSync(exitFile, 'utf8'),
      (x) => Boolean(x),
      10_000,
      'the monitor to exit',
    );
    expect(fs.readFileSync(exitFile, 'utf8').trim()).toBe('exit=0');
    await waitUntil(
      () => sessionAlive('main'),
      (alive) => !alive,
      5000,
      'the session to end',
    );
  }, 150_000);

  it('uses no colour when NO_COLOR is set', async () => {
    const exitFile = path.join(tmp, 'plain.exit');
    startMonitor('plain', daemon, { exitFile, env: { NO_COLOR: '1' } });
    const s = await waitUntil(
      () => screen('plain', true),
      (x) => x.includes('q quit') && /nodes \d+/.test(x),
      30_000,
      'the screen',
    );
    expect(s).not.toMatch(/\x1b\[[0-9;]*(3[0-7]|9[0-7]|38;5;\d+|38;2;[\d;]+)m/);
    keys('plain', 'q');
    await waitUntil(() => fs.existsSync(exitFile), Boolean, 10_000, 'the monitor to exit');
  }, 90_000);

  it('stays light while the daemon routes thousands of events a second', async () => {
    const exitFile = path.join(tmp, 'cpu.exit');
    startMonitor('cpu', daemon, { exitFile, env: { AGENTD_MONITOR_STATS: path.join(tmp, 'stats.json') } });
    await waitUntil(
      () => screen('cpu'),
      (x) => x.includes('q quit') && /nodes \d+/.test(x),
      30_000,
      'the screen',
    );
    const pid = (await waitUntil(
      () => monitorPid(daemon.socketPath),
      (p) => p !== null,
      5000,
      'the monitor process',
    ))!;
    const client = await daemon.connect();
    /** Emit `rate` events/s for `seconds`; the monitor's CPU over that time, in % of one core. */
    const burst = async (
      event: string,
      rate: number,
      seconds: number,
    ): Promise<{ percent: number; routed: number; sent: number }> => {
      const t0 = Date.now();
      const ticks0 = cpuTicks(pid);
      let sent = 0;
      while (Date.now() - t0 < seconds * 1000) {
        const due = ((Date.now() - t0) / 1000) * rate - sent;
        if (due >= 250) {
          await client.request('burst:emit', { n: 250, event });
          sent += 250;
        } else await sleep(10);
      }
      const elapsed = (Date.now() - t0) / 1000;
      return { percent: ((cpuTicks(pid) - ticks0) / 100 / elapsed) * 100, routed: Math.round(sent / elapsed), sent };
    };
    // The first burst also pays for JIT compilation of the hot paths: reported, not bounded.
    const first = await burst('burst:warm', 5000, 2);
    await sleep(500);
    const steady = await burst('burst:load', 5000, 5);
    await client.close();
    const { routed, sent } = steady;
    const percent = steady.percent;
    console.log(
      `monitor CPU: first 2 s burst ${first.percent.toFixed(1)}% of one core; steady ${percent.toFixed(1)}% while the daemon routed ${routed} events/s (${sent} events)`,
    );
    // Every event was counted although the log got only a sample (and says so), and nothing was dropped…
    const total = Number((await daemon.client.request<{ events: { seq: number } }>('system:health')).events.seq);
    const seen = (x: string): number => Number(/(\d+)k seen/.exec(x)?.[1] ?? NaN) * 1000;
    const s = await waitUntil(
      () => screen('cpu'),
      (x) => Math.abs(seen(x) - total) <= 500 && /burst:load i=\d+/.test(x),
      10_000,
      `about ${total} seen`,
    );
    expect(s).toMatch(/\d+k skipped ╗/);
    expect(s).not.toMatch(/dropped ╗/);
    // …at a cost that does not grow with the daemon's rate: the design target is ≤ 3 % (docs/tui.md); the bound
    // leaves room for a loaded 2-core CI machine, and is far below a subscriber that receives everything (6–8 %).
    expect(routed).toBeGreaterThan(3000);
    expect(percent).toBeLessThan(10);
    keys('cpu', 'q');
    await waitUntil(() => fs.existsSync(exitFile), Boolean, 10_000, 'the monitor to exit');
    const stats = JSON.parse(fs.readFileSync(path.join(tmp, 'stats.json'), 'utf8')) as {
      renders: number;
      seconds: number;
    };
    console.log(`monitor renders: ${stats.renders} in ${stats.seconds.toFixed(1)} s`);
    expect(stats.renders / stats.seconds).toBeLessThan(8);
  }, 120_000);
});
