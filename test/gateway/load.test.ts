/**
 * Slow and idle web clients never hurt the daemon: 1,000 idle SSE streams and one that never
 * reads while a flood of large events goes to it. The slow one's queue stays at its bound and it
 * is told what it lost; the daemon's heap stays bounded and it keeps answering; every idle stream
 * still gets the next event meant for it.
 */
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { ROOT } from '../helpers/daemon-process.js';
import { startGateway, type Gateway } from './helpers.js';

let g: Gateway;
const QUEUE = 500;

beforeAll(async () => {
  // --expose-gc: the fixture's fix:gc measures the heap that is kept, not the garbage a flood leaves.
  g = await startGateway({
    gateway: { client_queue: QUEUE },
    sections: { router: { history_size: 1000 } },
    nodeArgs: ['--expose-gc', '--import', 'tsx', path.join(ROOT, 'daemon', 'main.ts')],
  });
});
afterAll(async () => {
  await g?.daemon.stop();
});

const heapMb = async (): Promise<number> => {
  const r = await g.daemon.client.request<{ collected: boolean; heap_used: number }>('fix:gc');
  expect(r.collected).toBe(true);
  return Math.round(r.heap_used / 1048576);
};

it('holds 1,000 idle SSE clients and a slow one with bounded memory', { timeout: 180_000 }, async () => {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const idle: http.ClientRequest[] = [];
  const rare = new Array<number>(1000).fill(0);
  await Promise.all(
    Array.from(
      { length: 1000 },
      (_, i) =>
        new Promise<void>((resolve, reject) => {
          const req = http.get(
            `${g.base}/v1/stream?patterns=fix:rare`,
            { agent, headers: { authorization: `Bearer ${g.token}` } },
            (res) => {
              expect(res.statusCode).toBe(200);
              res.setEncoding('utf8');
              let first = true;
              res.on('data', (chunk: string) => {
                if (first) {
                  first = false;
                  resolve();
                }
                rare[i] += chunk.split('"event":"fix:rare"').length - 1;
              });
            },
          );
          req.on('error', reject);
          idle.push(req);
        }),
    ),
  );
  await vi.waitFor(async () =>
    expect((await g.daemon.client.request<{ clients: { sse: number } }>('gateway:status')).clients.sse).toBe(1000),
  );
  const before = await heapMb();

  // The slow client: asks for the flood and never reads a byte of it.
  const slow = net.connect(g.port, '127.0.0.1');
  slow.pause();
  await new Promise<void>((r) => slow.once('connect', () => r()));
  slow.write(
    `GET /v1/stream?patterns=fix:tick HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${g.token}\r\n\r\n`,
  );
  await vi.waitFor(async () =>
    expect((await g.daemon.client.request<{ clients: { sse: number } }>('gateway:status')).clients.sse).toBe(1001),
  );

  // 32,000 events of 4 KB (128 MB) for a client that reads nothing.
  for (let round = 0; round < 32; round++)
    await g.daemon.client.request('fix:emit', { n: 1000, bytes: 4096, batch: 100 }, { timeoutMs: 60_000 });
  const st = await g.daemon.client.request<{ queued_frames: number; dropped: number }>('gateway:status');
  expect(st.queued_frames).toBeLessThanOrEqual(QUEUE);
  // What neither the queue nor the connection's buffers (ours, bounded, and the kernel's) hold was dropped.
  expect(st.dropped).toBeGreaterThan(28_000);
  const t0 = performance.now();
  expect((await g.post('system:ping')).status).toBe(200);
  expect(performance.now() - t0).toBeLessThan(1000);
  const after = await heapMb();
  console.log(`heap kept: ${before} MB → ${after} MB with 1,000 idle clients and a slow one sent 128 MB`);
  // Were the slow client's frames kept, the heap would keep the 128 MB sent; bounded, it keeps the
  // router's history (1,000 × 4 KB), the slow client's queue (QUEUE × 4 KB) and little else.
  expect(after - before).toBeLessThan(16);

  // The idle streams are alive and get what is meant for them.
  await g.daemon.client.request('fix:emit', { n: 1, event: 'fix:rare' });
  await vi.waitFor(() => expect(rare.filter((n) => n === 1).length).toBe(1000), { timeout: 30_000 });
  slow.destroy();
  for (const r of idle) r.destroy();
  await vi.waitFor(
    async () =>
      expect((await g.daemon.client.request<{ clients: { sse: number } }>('gateway:status')).clients.sse).toBe(0),
    { timeout: 30_000 },
  );
});
