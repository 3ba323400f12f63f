/**
 * The fairness workload over the gateway: one web client pipelines expensive requests flat out
 * (over one WebSocket, or HTTP/1.1 pipelined on one connection), while another client pings one
 * at a time, over HTTP or over the Unix socket. What matters is the pinger's latency, in wall time
 * beside the same pinger against an idle daemon at the same moment (the machine's floor), and in
 * the daemon's event-loop CPU time while each ping waited (/proc/<pid>/schedstat), which a loaded
 * machine stretches in wall time but does not change.
 */
import fs from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

export interface Summary {
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  n: number;
}

export interface WebLoadResult {
  ping: Summary;
  hog: { req_per_s: number; n: number; errors: Record<string, number> };
  loop_cpu?: { p50_ms: number; p99_ms: number };
  reference?: Summary;
}

/** What the hog asks, again and again. */
export interface HogRequest {
  event: string;
  data: Record<string, unknown>;
}

/** A pipelining client: keeps `window` requests outstanding until stopped. */
interface Hog {
  answered: number;
  sent: number;
  errors: Record<string, number>;
  stop(): void;
  close(): void;
}

/** One WebSocket with `window` requests always in flight. */
export async function wsHog(port: number, token: string, req: HogRequest, window: number): Promise<Hog> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, { headers: { authorization: `Bearer ${token}` } });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const frame = JSON.stringify({ ...req, correlation_id: 'hog', timeout_ms: 600_000 });
  let running = true;
  const hog: Hog = {
    answered: 0,
    sent: 0,
    errors: {},
    stop: () => void (running = false),
    close: () => ws.terminate(),
  };
  ws.on('message', (m) => {
    hog.answered++;
    const f = JSON.parse(m.toString()) as { error?: { code: string } };
    if (f.error) hog.errors[f.error.code] = (hog.errors[f.error.code] ?? 0) + 1;
    if (running) (hog.sent++, ws.send(frame));
  });
  for (let i = 0; i < window; i++) (hog.sent++, ws.send(frame));
  return hog;
}

/** One HTTP/1.1 connection with `window` POSTs pipelined on it (Node's server runs them all at once). */
export async function httpHog(port: number, token: string, req: HogRequest, window: number): Promise<Hog> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.createConnection({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
  socket.on('error', () => undefined);
  const body = JSON.stringify(req.data);
  const request = `POST /v1/events/${req.event}?timeout_ms=600000 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  let running = true;
  let buf: Buffer = Buffer.alloc(0);
  const hog: Hog = {
    answered: 0,
    sent: 0,
    errors: {},
    stop: () => void (running = false),
    close: () => socket.destroy(),
  };
  socket.on('data', (chunk: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    let more = 0;
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) break;
      const head = buf.subarray(0, end).toString('latin1');
      const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + length) break;
      const status = Number(head.slice(9, 12));
      if (status !== 200) {
        const code =
          (JSON.parse(buf.subarray(end + 4, end + 4 + length).toString()) as { error?: { code: string } }).error
            ?.code ?? String(status);
        hog.errors[code] = (hog.errors[code] ?? 0) + 1;
      }
      buf = buf.subarray(end + 4 + length);
      hog.answered++;
      if (running) more++;
    }
    if (more > 0) {
      hog.sent += more;
      socket.write(request.repeat(more));
    }
  });
  hog.sent += window;
  socket.write(request.repeat(window));
  return hog;
}

/** `system:ping` one at a time, over HTTP keep-alive or over the daemon's socket. */
export type Pinger = () => Promise<void>;

export function httpPinger(base: string, token: string): Pinger {
  return async () => {
    const r = await fetch(`${base}/v1/events/system:ping`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    if (r.status !== 200) throw new Error(`ping answered ${r.status}`);
    await r.arrayBuffer();
  };
}

export async function socketPinger(socketPath: string): Promise<{ ping: Pinger; close(): void }> {
  const s = await new Promise<net.Socket>((resolve, reject) => {
    const c = net.createConnection(socketPath, () => resolve(c));
    c.once('error', reject);
  });
  let waiting: (() => void) | null = null;
  let buf = '';
  s.setEncoding('utf8');
  s.on('data', (d: string) => {
    buf += d;
    const nl = buf.lastIndexOf('\n');
    if (nl < 0) return;
    buf = buf.slice(nl + 1);
    const w = waiting;
    waiting = null;
    w?.();
  });
  return {
    ping: () =>
      new Promise<void>((resolve) => {
        waiting = resolve;
        s.write('{"event":"system:ping","data":{},"correlation_id":"p"}\n');
      }),
    close: () => s.destroy(),
  };
}

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
const r2 = (x: number): number => Math.round(x * 100) / 100;

export function summarize(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    p50_ms: r2(pct(sorted, 50)),
    p99_ms: r2(pct(sorted, 99)),
    max_ms: r2(sorted[sorted.length - 1] ?? NaN),
    n: samples.length,
  };
}

/** On-CPU time of a process's main thread (its event loop), ns; null where /proc has no schedstat. */
function loopCpuNs(pid: number): number | null {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}

/** Ping (a millisecond apart) until `until`; latencies in ms, and the daemon's loop CPU during each. */
async function pingUntil(ping: Pinger, until: () => boolean, pid?: number): Promise<{ wall: number[]; cpu: number[] }> {
  const wall: number[] = [];
  const cpu: number[] = [];
  while (!until()) {
    const c0 = pid ? loopCpuNs(pid) : null;
    const s = performance.now();
    await ping();
    wall.push(performance.now() - s);
    const c1 = c0 === null ? null : loopCpuNs(pid!);
    if (c0 !== null && c1 !== null) cpu.push((c1 - c0) / 1e6);
    await new Promise((r) => setTimeout(r, 1));
  }
  return { wall, cpu };
}

/**
 * Start the hog, let its pipeline fill, then ping for `seconds` (and ping the reference daemon at
 * the same time, if given); stop the hog and wait for its outstanding answers before returning.
 */
export async function runWebLoad(o: {
  hog: () => Promise<Hog>;
  ping: Pinger;
  reference?: Pinger;
  seconds: number;
  daemonPid?: number;
}): Promise<WebLoadResult> {
  const hog = await o.hog();
  await new Promise((r) => setTimeout(r, 500));
  const before = hog.answered;
  const t0 = performance.now();
  const over = (): boolean => performance.now() - t0 >= o.seconds * 1000;
  const [mine, ref] = await Promise.all([
    pingUntil(o.ping, over, o.daemonPid),
    o.reference ? pingUntil(o.reference, over) : null,
  ]);
  const secs = (performance.now() - t0) / 1000;
  const n = hog.answered - before;
  hog.stop();
  const until = performance.now() + 60_000;
  while (hog.answered < hog.sent && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
  hog.close();
  const cpu = mine.cpu.length ? summarize(mine.cpu) : null;
  return {
    ping: summarize(mine.wall),
    hog: { req_per_s: Math.round(n / secs), n, errors: hog.errors },
    ...(cpu ? { loop_cpu: { p50_ms: cpu.p50_ms, p99_ms: cpu.p99_ms } } : {}),
    ...(ref ? { reference: summarize(ref.wall) } : {}),
  };
}
