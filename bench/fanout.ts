/**
 * Fan-out to many subscribers, as users run it: the bundled daemon with its plugins, one client
 * writing `kg:add_nodes` while 1, 10, 100 and 1,000 other connections are subscribed to `*` (each
 * `kg:changed` goes to all of them). The writer's serial p50 and pipelined throughput are measured
 * beside the same writer with nobody subscribed, in alternating rounds so the machine's drift hits
 * both alike; the daemon's CPU time per write beside it. Then a burst at 1,000 subscribers, and the
 * daemon's memory while it goes idle afterwards, beside its idle memory before any subscriber came.
 *
 * The subscribers live in a process of their own (bench/subscriber-host.ts), so their reading does
 * not share the writer's event loop; on two cores the daemon, the writer and the subscribers still
 * share the machine.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { builtDaemonArgs, ensureBuilt } from '../daemon/build.js';
import { ROOT, startDaemon, type DaemonHandle } from '../test/helpers/daemon-process.js';
import { LineClient } from './line-client.js';
import { ratio, round, summarize } from './stats.js';

const TICK = 100; // jiffies per second, as /proc reports them on Linux

function cpuMs(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / TICK;
}

const rssMb = (pid: number): number =>
  round((Number(fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * 4096) / 1048576, 0);

class Host {
  private waiting = new Map<string, (m: Record<string, unknown>) => void>();
  private constructor(private readonly p: ChildProcess) {
    p.on('message', (m: Record<string, unknown>) => {
      const w = this.waiting.get(m.op as string);
      this.waiting.delete(m.op as string);
      w?.(m);
    });
  }
  static async start(): Promise<Host> {
    const p = fork(path.join(ROOT, 'bench', 'subscriber-host.ts'), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    await new Promise((r) => p.once('message', r));
    return new Host(p);
  }
  call(op: string, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      this.waiting.set(op, resolve);
      this.p.send({ op, ...extra });
    });
  }
  close(): void {
    this.p.send({ op: 'close' });
  }
}

let nodeSeq = 0;
const addNodes = (c: LineClient): Promise<Record<string, unknown>> =>
  c.request('kg:add_nodes', {
    nodes: [{ id: `w${++nodeSeq}`, label: 'Bench', properties: { i: nodeSeq, note: 'fan-out benchmark' } }],
  });

async function serial(c: LineClient, n: number): Promise<{ p50_us: number; p99_us: number }> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const r = await addNodes(c);
    if (r.error) throw new Error(JSON.stringify(r.error));
    samples.push(performance.now() - t);
  }
  const { p50_us, p99_us } = summarize(samples);
  return { p50_us, p99_us };
}

async function pipelined(c: LineClient, n: number, depth: number): Promise<number> {
  let sent = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: depth }, async () => {
      while (sent < n) {
        sent++;
        await addNodes(c);
      }
    }),
  );
  return round(n / ((performance.now() - t0) / 1000), 0);
}

/** Frames the subscribers have received settle: every delivery of the round arrived. */
async function settled(host: Host, expected: number, timeoutMs = 60_000): Promise<number> {
  const t0 = Date.now();
  let last = -1;
  for (;;) {
    const n = (await host.call('count')).frames as number;
    if (n >= expected || (n === last && Date.now() - t0 > timeoutMs)) return n;
    last = n;
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Round {
  serial: { p50_us: number; p99_us: number };
  pipelined_req_per_s: number;
  daemon_cpu_us_per_write: number;
}

async function round1(d: DaemonHandle, writer: LineClient, n: number, np: number): Promise<Round> {
  const pid = d.proc.pid!;
  const c0 = cpuMs(pid);
  const s = await serial(writer, n);
  const pipe = await pipelined(writer, np, 64);
  const cpu = cpuMs(pid) - c0;
  return { serial: s, pipelined_req_per_s: pipe, daemon_cpu_us_per_write: round((cpu * 1000) / (n + np), 0) };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
};

export async function benchFanout(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const n = opts.quick ? 200 : 2000;
  const np = opts.quick ? 500 : 5000;
  const rounds = opts.quick ? 1 : 3;
  const counts = opts.quick ? [10, 1000] : [1, 10, 100, 1000];
  const { entry } = await ensureBuilt(ROOT);
  const d = await startDaemon({ config: 'daemon:\n  max_connections: 1100\n', nodeArgs: builtDaemonArgs(entry) });
  const host = await Host.start();
  const writer = await LineClient.connect(d.socketPath);
  try {
    const pid = d.proc.pid!;
    await serial(writer, n); // warm up: the kg store's statements, the router's caches
    await pipelined(writer, np, 64);
    await new Promise((r) => setTimeout(r, 1000));
    const idleRss = rssMb(pid);
    let connected = 0;
    const by: Record<string, unknown> = {};
    for (const subs of counts) {
      await host.call('connect', { sock: d.socketPath, count: subs - connected });
      connected = subs;
      const alone: Round[] = [];
      const fanned: Round[] = [];
      let delivered = 0;
      let expected = 0;
      for (let r = 0; r < rounds; r++) {
        // Alternating, so drift in the machine's load hits both sides alike.
        alone.push(await round1(d, writer, n, np));
        const before = (await host.call('count')).frames as number;
        await host.call('subscribe', { patterns: ['*'] });
        fanned.push(await round1(d, writer, n, np));
        expected = before + subs * (n + np);
        delivered = await settled(host, expected);
        await host.call('unsubscribe');
      }
      const p50Alone = median(alone.map((x) => x.serial.p50_us));
      const p50Fanned = median(fanned.map((x) => x.serial.p50_us));
      const pipeAlone = median(alone.map((x) => x.pipelined_req_per_s));
      const pipeFanned = median(fanned.map((x) => x.pipelined_req_per_s));
      by[String(subs)] = {
        serial_p50_us: {
          subscribed: p50Fanned,
          alone: p50Alone,
          ratio: ratio(p50Fanned, p50Alone),
          each_round: fanned.map((x, i) => ratio(x.serial.p50_us, alone[i]!.serial.p50_us)),
        },
        serial_p99_us: {
          subscribed: median(fanned.map((x) => x.serial.p99_us)),
          alone: median(alone.map((x) => x.serial.p99_us)),
        },
        pipelined_64_req_per_s: { subscribed: pipeFanned, alone: pipeAlone, ratio: ratio(pipeFanned, pipeAlone) },
        daemon_cpu_us_per_write: {
          subscribed: median(fanned.map((x) => x.daemon_cpu_us_per_write)),
          alone: median(alone.map((x) => x.daemon_cpu_us_per_write)),
        },
        // Every kg:changed of the last round reached every subscriber (none dropped).
        last_round_delivered: round(delivered / Math.max(1, expected), 4),
      };
    }
    // The burst: pipelined writes at 1,000 subscribers, then the daemon left idle.
    await host.call('subscribe', { patterns: ['*'] });
    const c0 = cpuMs(pid);
    const burstN = opts.quick ? 2000 : 20_000;
    const burstRate = await pipelined(writer, burstN, 64);
    const burstCpu = cpuMs(pid) - c0;
    const peak = rssMb(pid);
    const health0 = (await writer.request('system:health')).data as { memory: { rss_mb: number; heap_mb: number } };
    const samples: Array<[number, number]> = [];
    const t0 = performance.now();
    let backWithin2x: number | null = null;
    while (performance.now() - t0 < (opts.quick ? 3000 : 15_000)) {
      const s = round((performance.now() - t0) / 1000, 1);
      const rss = rssMb(pid);
      samples.push([s, rss]);
      if (backWithin2x === null && rss <= 2 * idleRss) backWithin2x = s;
      await new Promise((r) => setTimeout(r, 500));
    }
    const rssAt10 = samples.filter(([s]) => s <= 10).at(-1)?.[1];
    const health1 = (await writer.request('system:health')).data as { memory: { rss_mb: number; heap_mb: number } };
    await host.call('unsubscribe');
    return {
      daemon: 'bundled, embedded defaults (what daemon-control start runs)',
      writes: { serial: n, pipelined: np, depth: 64, rounds },
      subscribers: by,
      target: { serial_p50_ratio_at_1000_max: 3 },
      burst_at_1000: {
        writes: burstN,
        req_per_s: burstRate,
        deliveries_per_s: round(burstRate * 1000, 0),
        daemon_cpu_us_per_delivery: round((burstCpu * 1000) / (burstN * 1000), 3),
        rss_mb_idle_before: idleRss,
        rss_mb_peak: peak,
        heap_mb_after_burst: health0.memory.heap_mb,
        rss_mb_10s_after: rssAt10,
        heap_mb_15s_after: health1.memory.heap_mb,
        seconds_until_within_2x_idle: backWithin2x,
        rss_mb_every_half_second: samples.map(([, r]) => r),
        target: 'rss within 2x idle within 10 s',
      },
    };
  } finally {
    writer.close();
    host.close();
    await d.stop();
  }
}

// Run directly: `npx tsx bench/fanout.ts [--quick]`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchFanout({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  process.exit(0);
}
