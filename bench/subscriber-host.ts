/**
 * Many subscribed clients in one process of their own, so their reading does not share an event
 * loop with the client whose latency a benchmark measures. Driven over IPC by bench/fanout.ts:
 *   {op:'connect', sock, count}  open `count` more connections (not subscribed)
 *   {op:'subscribe', patterns}   subscribe every connection (one subscription each)
 *   {op:'unsubscribe'}           drop those subscriptions
 *   {op:'count'}                 frames received so far
 * A subscriber here reads each frame and counts it (newlines), without parsing the JSON.
 */
import net from 'node:net';

interface Sub {
  socket: net.Socket;
  pending: Array<(line: string) => void>;
  partial: string;
  subscription: string | null;
}

const subs: Sub[] = [];
let frames = 0;
let seq = 0;

function open(sock: string): Promise<Sub> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(sock);
    const s: Sub = { socket, pending: [], partial: '', subscription: null };
    socket.once('error', reject);
    socket.once('connect', () => resolve(s));
    socket.on('data', (chunk: Buffer) => {
      // Answers are awaited one at a time and only while no event flows: only then is the text parsed.
      if (s.pending.length > 0) {
        s.partial += chunk.toString('utf8');
        let nl: number;
        while ((nl = s.partial.indexOf('\n')) >= 0) {
          const line = s.partial.slice(0, nl);
          s.partial = s.partial.slice(nl + 1);
          if (line.includes('"kind":"response"')) s.pending.shift()?.(line);
          else frames++;
        }
        return;
      }
      for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) frames++;
    });
  });
}

function request(s: Sub, event: string, data: Record<string, unknown>): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    s.pending.push((line) => resolve(JSON.parse(line) as Record<string, unknown>));
    s.socket.write(`${JSON.stringify({ event, data, correlation_id: `h${++seq}` })}\n`);
  });
}

async function inBatches(fn: (s: Sub) => Promise<void>): Promise<void> {
  for (let i = 0; i < subs.length; i += 100) await Promise.all(subs.slice(i, i + 100).map(fn));
}

process.on('message', (m: { op: string; sock?: string; count?: number; patterns?: string[] }) => {
  void (async () => {
    switch (m.op) {
      case 'connect':
        for (let i = 0; i < m.count!; i += 100)
          subs.push(...(await Promise.all(Array.from({ length: Math.min(100, m.count! - i) }, () => open(m.sock!)))));
        return process.send!({ op: 'connect', total: subs.length });
      case 'subscribe':
        await inBatches(async (s) => {
          const r = await request(s, 'monitor:subscribe', { patterns: m.patterns! });
          s.subscription = (r.data as { subscription_id: string }).subscription_id;
        });
        return process.send!({ op: 'subscribe', total: subs.length });
      case 'unsubscribe':
        await inBatches(async (s) => {
          if (s.subscription) await request(s, 'monitor:unsubscribe', { subscription_id: s.subscription });
          s.subscription = null;
        });
        return process.send!({ op: 'unsubscribe' });
      case 'count':
        return process.send!({ op: 'count', frames });
      case 'close':
        for (const s of subs) s.socket.destroy();
        return process.exit(0);
    }
  })();
});
process.send!({ op: 'ready' });
