/**
 * Gateway benchmarks, each beside its baseline in the same run: the same no-op event
 * (`system:ping`) over the Unix socket, over HTTP (keep-alive) and over the gateway's WebSocket;
 * and fan-out of emitted events to SSE clients beside the same fan-out to socket subscribers.
 */
import http from 'node:http';
import { createParser } from 'eventsource-parser';
import WebSocket from 'ws';
import { startGateway } from '../test/gateway/helpers.js';
import { LineClient } from './line-client.js';
import { ratio, round, summarize } from './stats.js';

async function timed(
  n: number,
  once: () => Promise<unknown>,
): Promise<{ p50_us: number; p99_us: number; req_per_s: number }> {
  // Warm: the HTTP stack's code is cold for the first thousand or so requests (JIT).
  for (let i = 0; i < Math.max(1000, n / 5); i++) await once();
  const samples: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await once();
    samples.push(performance.now() - s);
  }
  const { p50_us, p99_us } = summarize(samples);
  return { p50_us, p99_us, req_per_s: round(n / ((performance.now() - t0) / 1000), 0) };
}

function httpPing(agent: http.Agent, port: number, token: string, path = '/v1/events/system:ping'): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method: 'POST',
        path,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': 2 },
      },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end('{}');
  });
}

function httpGet(agent: http.Agent, port: number, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    http
      .get({ agent, host: '127.0.0.1', port, path }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      })
      .on('error', reject);
  });
}

/** `clients` SSE streams on `fix:tick`; resolves with deliveries/s once each got `events`. */
async function sseFanout(
  port: number,
  token: string,
  clients: number,
  events: number,
  emit: (n: number) => Promise<unknown>,
): Promise<number> {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  let received = 0;
  const total = clients * events;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const reqs = await Promise.all(
    Array.from(
      { length: clients },
      () =>
        new Promise<http.ClientRequest>((resolve) => {
          const req = http.get(
            {
              agent,
              host: '127.0.0.1',
              port,
              path: '/v1/stream?patterns=fix:tick',
              headers: { authorization: `Bearer ${token}` },
            },
            (res) => {
              res.setEncoding('utf8');
              // Parsed as the socket client parses its lines: each event's frame is decoded.
              const parser = createParser({
                onEvent: (m) => {
                  if (m.id === undefined) return resolve(req);
                  if ((JSON.parse(m.data) as { event: string }).event === 'fix:tick' && ++received === total) done();
                },
              });
              res.on('data', (chunk: string) => parser.feed(chunk));
            },
          );
        }),
    ),
  );
  const t0 = performance.now();
  await emit(events);
  await all;
  const secs = (performance.now() - t0) / 1000;
  for (const r of reqs) r.destroy();
  return round(total / secs, 0);
}

async function socketFanout(
  sock: string,
  clients: number,
  events: number,
  emit: (n: number) => Promise<unknown>,
): Promise<number> {
  const subs = await Promise.all(Array.from({ length: clients }, () => LineClient.connect(sock)));
  let received = 0;
  const total = clients * events;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  for (const s of subs) {
    s.events((f) => {
      if (f.event === 'fix:tick' && ++received === total) done();
    });
    await s.request('monitor:subscribe', { patterns: ['fix:tick'] });
  }
  const t0 = performance.now();
  await emit(events);
  await all;
  const secs = (performance.now() - t0) / 1000;
  for (const s of subs) s.close();
  return round(total / secs, 0);
}

export async function benchGateway(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const n = opts.quick ? 500 : 5000;
  const g = await startGateway({ gateway: { client_queue: 100_000 } });
  try {
    const sock = await LineClient.connect(g.daemon.socketPath);
    const socketPing = await timed(n, () => sock.request('system:ping'));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const httpPingR = await timed(n, () => httpPing(agent, g.port, g.token));
    // The HTTP stack alone: GET /healthz on the same connection (no auth, no body, no router).
    const httpFloor = await timed(n, () => httpGet(agent, g.port, '/healthz'));
    agent.destroy();
    const ws = new WebSocket(`ws://127.0.0.1:${g.port}/v1/ws`, { headers: { authorization: `Bearer ${g.token}` } });
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    let wsSeq = 0;
    const waiting = new Map<string, () => void>();
    ws.on('message', (m) => {
      const f = JSON.parse(m.toString()) as { correlation_id?: string };
      const w = f.correlation_id ? waiting.get(f.correlation_id) : undefined;
      if (w) (waiting.delete(f.correlation_id!), w());
    });
    const wsPing = await timed(
      n,
      () =>
        new Promise<void>((resolve) => {
          const id = `w${++wsSeq}`;
          waiting.set(id, resolve);
          ws.send(`{"event":"system:ping","correlation_id":"${id}"}`);
        }),
    );
    ws.close();
    const clients = opts.quick ? 10 : 50;
    const events = opts.quick ? 500 : 4000;
    const emit = (k: number) => g.daemon.client.request('fix:emit', { n: k, batch: 500 }, { timeoutMs: 120_000 });
    const socketRate = await socketFanout(g.daemon.socketPath, clients, events, emit);
    const sseRate = await sseFanout(g.port, g.token, clients, events, emit);
    sock.close();
    return {
      ping: {
        socket: socketPing,
        http: httpPingR,
        http_healthz: httpFloor,
        websocket: wsPing,
        http_overhead_p50_us: round(httpPingR.p50_us - socketPing.p50_us),
        http_p50_ratio: ratio(httpPingR.p50_us, socketPing.p50_us),
        http_beyond_healthz_p50_us: round(httpPingR.p50_us - httpFloor.p50_us),
        websocket_p50_ratio: ratio(wsPing.p50_us, socketPing.p50_us),
      },
      fanout: {
        clients,
        events,
        socket_deliveries_per_s: socketRate,
        sse_deliveries_per_s: sseRate,
        sse_ratio: ratio(sseRate, socketRate),
      },
    };
  } finally {
    await g.daemon.stop();
  }
}
