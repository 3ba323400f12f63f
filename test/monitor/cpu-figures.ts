/**
 * The "Light under load" figures of docs/results.md: CPU of the monitor (in tmux, 80×24) beside a bare
 * EventClient subscriber to `*` that does nothing, in the same run against the same daemon, at
 * several event rates. CPU is utime + stime from /proc/<pid>/stat per wall second of steady load
 * (a process's own CPU time barely changes when other work competes for the cores; its wall-clock
 * share would). Each rate is measured `--rounds` times; the load average is printed with each row.
 *
 *   npx tsx test/monitor/cpu-figures.ts [--seconds 12] [--rounds 2] [--rates 0,2000,5000,10000] [--compare DIR]
 *
 * `--compare DIR` runs a second monitor from another checkout beside it (e.g. the commit before a
 * change, `git archive <rev> interfaces client | tar -x -C DIR` with node_modules linked in).
 * Needs tmux. `--bare <socket>` is the subscriber's own process (started by the run).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { EventClient } from '../../client/index.js';
import { ROOT } from '../helpers/daemon-process.js';
import { startMonitorDaemon } from './helpers.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '12' },
    rounds: { type: 'string', default: '2' },
    rates: { type: 'string', default: '0,2000,5000,10000' },
    bare: { type: 'string' },
    compare: { type: 'string' },
  },
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** utime + stime in seconds (100 clock ticks a second on Linux). */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

const loadAvg = (): string => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

function findPid(match: (argv: string[]) => boolean): number | null {
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (match(fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0'))) return Number(name);
    } catch {
      /* gone meanwhile */
    }
  }
  return null;
}

async function bareSubscriber(socketPath: string): Promise<void> {
  const c = await EventClient.connect({ socketPath });
  let n = 0;
  await c.subscribe('*', () => void n++);
  process.stdout.write('subscribed\n');
  process.on('SIGTERM', () => void c.close().then(() => process.exit(0)));
}

async function main(): Promise<void> {
  if (args.bare) return bareSubscriber(args.bare);
  const seconds = Number(args.seconds);
  const rounds = Number(args.rounds);
  const rates = args.rates!.split(',').map(Number);
  const daemon = await startMonitorDaemon();
  const server = `agentd-cpu-${process.pid}`;
  const tmux = (...a: string[]): void => void spawnSync('tmux', ['-L', server, ...a], { stdio: 'ignore' });
  let bare: ChildProcess | null = null;
  try {
    const env = `AGENTD_HOME=${JSON.stringify(daemon.home)} AGENTD_SOCKET=${JSON.stringify(daemon.socketPath)} AGENTD_CONFIG=${JSON.stringify(path.join(daemon.home, 'agentd.yaml'))}`;
    tmux(
      'new-session',
      '-d',
      '-x',
      '80',
      '-y',
      '24',
      '-s',
      'cpu',
      `cd ${JSON.stringify(ROOT)} && env ${env} ./daemon-control.ts monitor`,
    );
    const other = args.compare ? path.resolve(args.compare) : null;
    if (other)
      tmux(
        'new-session',
        '-d',
        '-x',
        '80',
        '-y',
        '24',
        '-s',
        'old',
        `cd ${JSON.stringify(other)} && env ${env} ${JSON.stringify(process.execPath)} --import tsx interfaces/monitor/main.tsx --socket ${JSON.stringify(daemon.socketPath)}`,
      );
    bare = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'test', 'monitor', 'cpu-figures.ts'), '--bare', daemon.socketPath],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => bare!.stdout!.once('data', () => resolve()));
    let monitor: number | null = null;
    for (let i = 0; i < 200 && !monitor; i++) {
      monitor = findPid(
        (a) => a.includes(path.join(ROOT, 'interfaces', 'monitor', 'main.tsx')) && a.includes(daemon.socketPath),
      );
      await sleep(50);
    }
    if (!monitor) throw new Error('the monitor did not start');
    let old: number | null = null;
    for (let i = 0; i < 200 && other && !old; i++) {
      old = findPid((a) => a.some((x) => x === 'interfaces/monitor/main.tsx') && a.includes(daemon.socketPath));
      await sleep(50);
    }
    if (other && !old) throw new Error('the monitor to compare with did not start');
    await sleep(3000); // past start-up
    const driver = await daemon.connect();
    /** Emit `rate` events/s for `s` seconds; CPU per wall second of each process over that time. */
    const measure = async (rate: number, s: number) => {
      const t0 = Date.now();
      const c0 = {
        monitor: cpuSeconds(monitor!),
        bare: cpuSeconds(bare!.pid!),
        daemon: cpuSeconds(daemon.proc.pid!),
        old: old ? cpuSeconds(old) : 0,
      };
      let sent = 0;
      while (Date.now() - t0 < s * 1000) {
        if (rate > 0 && ((Date.now() - t0) / 1000) * rate - sent >= 250) {
          await driver.request('burst:emit', { n: 250, event: 'burst:load' });
          sent += 250;
        } else await sleep(5);
      }
      const wall = (Date.now() - t0) / 1000;
      const pct = (pid: number, c: number): number => ((cpuSeconds(pid) - c) / wall) * 100;
      return {
        rate: Math.round(sent / wall),
        monitor: pct(monitor!, c0.monitor),
        bare: pct(bare!.pid!, c0.bare),
        daemon: pct(daemon.proc.pid!, c0.daemon),
        old: old ? pct(old, c0.old) : null,
        load: loadAvg(),
      };
    };
    console.log(
      `| target events/s | routed | round | monitor | bare \`*\` subscriber |${other ? ' monitor compared |' : ''} daemon | load average (1, 5, 15 min) |`,
    );
    console.log(`|---|---|---|---|---|${other ? '---|' : ''}---|---|`);
    for (const rate of rates) {
      if (rate > 0) await measure(rate, 2); // warm the paths up at this rate first
      for (let r = 1; r <= rounds; r++) {
        const m = await measure(rate, seconds);
        const cmp = m.old === null ? '' : ` ${m.old.toFixed(1)} % |`;
        console.log(
          `| ${rate} | ${m.rate} | ${r} | ${m.monitor.toFixed(1)} % | ${m.bare.toFixed(1)} % |${cmp} ${m.daemon.toFixed(1)} % | ${m.load} |`,
        );
      }
    }
    await driver.close();
  } finally {
    tmux('kill-server');
    bare?.kill('SIGTERM');
    await daemon.stop();
    fs.rmSync(daemon.home, { recursive: true, force: true });
  }
}

main().then(
  () => {
    if (!args.bare) process.exit(0);
  },
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
