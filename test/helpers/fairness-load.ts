/**
 * The fairness workload, shared by the test (targets asserted) and the bench (figures beside the
 * unfair baseline): one client pipelines expensive requests flat out while another sends
 * `system:ping` one at a time; what matters is the pinger's latency and the pipeliner's throughput.
 *
 * Mixes: `kg` (kg:stats on a 40k-node graph for a quarter of the requests, then kg:find, kg:neighbors
 * at depth 2, kg:get), `scan` (the same with a kg:find by property, which reads every node, in place
 * of kg:stats) and `deep` (agent:spawn with metadata nested 20,000 deep, each one refused).
 */
import fs from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export type Mix = 'kg' | 'scan' | 'deep';

export interface LoadResult {
  ping: { p50_ms: number; p99_ms: number; max_ms: number; n: number };
  hog: { req_per_s: number; n: number; errors: Record<string, number> };
  /**
   * The pipeliner's answers that arrived while a ping waited for its own, median and 99th percentile:
   * how much of the pipeline a ping waits behind, which a loaded machine does not change (the unfair
   * kernel ran the whole window ahead of it).
   */
  overtaken: { p50: number; p99: number };
  /**
   * CPU time the daemon's event-loop thread spent while each ping waited for its answer (from
   * /proc/<pid>/schedstat, in ns): the work the loop did before answering, which a busy machine
   * stretches in wall time but does not change.
   */
  loop_cpu?: { p50_ms: number; p99_ms: number };
  /** The same pinger against a reference daemon doing nothing else, at the same time (the machine's floor). */
  reference?: { p50_ms: number; p99_ms: number; max_ms: number; n: number };
}

/** A bare newline-JSON connection: no client-side parsing beyond what is needed to count answers. */
class Line {
  private buf = '';
  private waiters = new Map<string, (f: Record<string, unknown>) => void>();
  private n = 0;
  onAnswer: ((f: Record<string, unknown>) => void) | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      let start = 0;
      while ((nl = this.buf.indexOf('\n', start)) >= 0) {
        const f = JSON.parse(this.buf.slice(start, nl)) as Record<string, unknown>;
        start = nl + 1;
        const w = this.waiters.get(String(f.correlation_id));
        if (w) {
          this.waiters.delete(String(f.correlation_id));
          w(f);
        } else this.onAnswer?.(f);
      }
      this.buf = this.buf.slice(start);
    });
    socket.on('error', () => undefined);
  }

  static connect(path: string): Promise<Line> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(path, () => resolve(new Line(s)));
      s.once('error', reject);
    });
  }

  request(event: string, data: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = `r${++this.n}`;
    return new Promise((resolve) => {
      this.waiters.set(id, resolve);
      this.socket.write(`${JSON.stringify({ event, data, correlation_id: id, timeout_ms: 600_000 })}\n`);
    });
  }

  /** Send a prepared frame whose answer goes to onAnswer. */
  sendRaw(frame: string): void {
    this.socket.write(frame);
  }

  close(): void {
    this.socket.destroy();
  }
}

const LABELS = ['Paper', 'Concept', 'Hypothesis', 'Experiment', 'Finding', 'Dataset', 'Method'];
const TYPES = ['SUPPORTS', 'REFUTES', 'CITES', 'TESTS', 'DERIVED_FROM', 'MENTIONS', 'RELATES_TO'];

/** A graph of `n` nodes and 2n edges, loaded through the socket in event-sized batches. */
export async function loadGraph(socketPath: string, n: number): Promise<void> {
  const c = await Line.connect(socketPath);
  try {
    for (let i = 0; i < n; i += 5000) {
      const nodes = Array.from({ length: Math.min(5000, n - i) }, (_, k) => ({
        id: `n${i + k}`,
        label: LABELS[(i + k) % LABELS.length],
        properties: { name: `node ${i + k}`, score: (i + k) % 100 },
      }));
      const r = await c.request('kg:add_nodes', { nodes });
      if (r.error) throw new Error(`kg:add_nodes: ${JSON.stringify(r.error)}`);
    }
    for (let i = 0; i < 2 * n; i += 5000) {
      const edges = Array.from({ length: Math.min(5000, 2 * n - i) }, (_, k) => {
        const j = i + k;
        return { from: `n${j % n}`, to: `n${(j * 7919 + 13) % n}`, type: TYPES[j % TYPES.length] };
      }).filter((e) => e.from !== e.to);
      const r = await c.request('kg:add_edges', { edges });
      if (r.error) throw new Error(`kg:add_edges: ${JSON.stringify(r.error)}`);
    }
  } finally {
    c.close();
  }
}

function frames(mix: Mix, n: number): string[] {
  if (mix === 'deep') {
    const depth = 20_000;
    const metadata = `{"x":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
    return [`{"event":"agent:spawn","data":{"system":"x","metadata":${metadata}},"correlation_id":"hog"}\n`];
  }
  const out: string[] = [];
  for (let i = 0; i < 64; i++) {
    const id = `n${(i * 7331) % n}`;
    const f = [
      mix === 'scan' ? { event: 'kg:find', data: { where: { score: i }, limit: 20 } } : { event: 'kg:stats', data: {} },
      { event: 'kg:find', data: { label: LABELS[i % LABELS.length], limit: 20 } },
      { event: 'kg:neighbors', data: { id, depth: 2, limit: 200 } },
      { event: 'kg:get', data: { id } },
    ][i % 4]!;
    out.push(`${JSON.stringify({ ...f, correlation_id: 'hog' })}\n`);
  }
  return out;
}

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
const r2 = (x: number): number => Math.round(x * 100) / 100;

/**
 * Run the pipeliner (keeping `window` requests outstanding) and the pinger for `seconds`; `hog: false`
 * measures the pinger alone (the machine's floor). The pinger pauses a millisecond between pings.
 */
/** Ping one at a time (a millisecond apart) until `until`; the latencies in ms. */
async function pingUntil(c: Line, until: () => boolean): Promise<number[]> {
  const samples: number[] = [];
  while (!until()) {
    const s = performance.now();
    await c.request('system:ping');
    samples.push(performance.now() - s);
    await new Promise((r) => setTimeout(r, 1));
  }
  return samples;
}

const summary = (samples: number[]) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    p50_ms: r2(pct(sorted, 50)),
    p99_ms: r2(pct(sorted, 99)),
    max_ms: r2(sorted[sorted.length - 1] ?? NaN),
    n: samples.length,
  };
};

/** On-CPU time of a process's main thread (its event loop), ns; null where /proc has no schedstat. */
function loopCpuNs(pid: number): number | null {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}

export async function runLoad(
  socketPath: string,
  opts: {
    mix: Mix;
    nodes: number;
    seconds: number;
    window?: number;
    hog?: boolean;
    referenceSocket?: string;
    daemonPid?: number;
  },
): Promise<LoadResult> {
  const window = opts.window ?? 256;
  const hog = await Line.connect(socketPath);
  const pinger = await Line.connect(socketPath);
  const list = frames(opts.mix, opts.nodes);
  let answered = 0;
  let sent = 0;
  const errors: Record<string, number> = {};
  let running = true;
  let measuring = false;
  let counted = 0;
  let hogAnswers = 0;
  const overtaken: number[] = [];
  hog.onAnswer = (f) => {
    answered++;
    hogAnswers++;
    if (measuring) counted++;
    const e = f.error as { code?: string } | undefined;
    if (e?.code) errors[e.code] = (errors[e.code] ?? 0) + 1;
    if (running) hog.sendRaw(list[sent++ % list.length]!);
  };
  if (opts.hog !== false) for (let i = 0; i < window; i++) hog.sendRaw(list[sent++ % list.length]!);
  // Let the pipeline fill before measuring.
  await new Promise((r) => setTimeout(r, 500));
  measuring = true;
  const samples: number[] = [];
  const t0 = performance.now();
  const over = (): boolean => performance.now() - t0 >= opts.seconds * 1000;
  const reference = opts.referenceSocket ? await Line.connect(opts.referenceSocket) : null;
  const referenceSamples = reference ? pingUntil(reference, over) : Promise.resolve([]);
  const cpu: number[] = [];
  while (!over()) {
    const c0 = opts.daemonPid ? loopCpuNs(opts.daemonPid) : null;
    const s = performance.now();
    const before = hogAnswers;
    await pinger.request('system:ping');
    samples.push(performance.now() - s);
    overtaken.push(hogAnswers - before);
    const c1 = c0 === null ? null : loopCpuNs(opts.daemonPid!);
    if (c0 !== null && c1 !== null) cpu.push((c1 - c0) / 1e6);
    await new Promise((r) => setTimeout(r, 1));
  }
  const secs = (performance.now() - t0) / 1000;
  const ref = await referenceSamples;
  reference?.close();
  measuring = false;
  running = false;
  const hogCount = counted;
  // Let the hog's outstanding answers come back before closing, so the daemon is idle for the next run.
  const until = performance.now() + 30_000;
  while (answered < sent && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
  hog.close();
  pinger.close();
  const passed = [...overtaken].sort((a, b) => a - b);
  return {
    overtaken: { p50: pct(passed, 50), p99: pct(passed, 99) },
    ...(reference ? { reference: summary(ref) } : {}),
    ...(cpu.length ? { loop_cpu: { p50_ms: summary(cpu).p50_ms, p99_ms: summary(cpu).p99_ms } } : {}),
    ping: summary(samples),
    hog: { req_per_s: Math.round(hogCount / secs), n: hogCount, errors },
  };
}
