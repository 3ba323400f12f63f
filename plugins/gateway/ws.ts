/**
 * `GET /v1/ws`: the socket protocol over WebSocket. One text message is one frame: requests in the
 * socket's envelope, answered by `correlation_id`, concurrently; `monitor:subscribe` and
 * `monitor:unsubscribe` act on this WebSocket's own subscriptions, whose events arrive as the
 * socket's event frames through the same bounded queue an SSE client has. Answers are never
 * dropped; a client that stops reading them is disconnected once they pile up past a bound.
 */
import type { WebSocket } from 'ws';
import { z } from 'zod';
import { DaemonError } from '../../client/errors.js';
import { PATTERN_RE, type CorrelationId } from '../../client/protocol.js';
import type { PluginContext } from '../../daemon/plugin-api.js';
import { ClientQueue, type OutFrame } from './client-queue.js';
import type { Client, Clients } from './clients.js';
import { webClientId, type Door } from './door.js';
import { errorFrame, parseFrame, responseFrame } from './envelope.js';
import { toDaemonError } from './errors.js';
import { Feed } from './feed.js';

/** Unsent bytes past which a WebSocket that does not read its answers is closed. */
const ANSWER_LIMIT = 16 * 1024 * 1024;
const MAX_SUBSCRIPTIONS = 100;

const subscribeSchema = z.object({
  patterns: z.array(z.string().regex(PATTERN_RE, 'a pattern is "ns:action", "ns:*", "ns:**" or "*"')).min(1).max(100),
  max_rate: z.number().int().min(1).max(1_000_000).optional(),
});
const unsubscribeSchema = z.object({ subscription_id: z.string() });

function invalid(event: string, err: z.ZodError): DaemonError {
  const issues = err.issues.map((i) => ({
    path: i.path.map(String).join('.') || '(data)',
    message: i.message,
    code: i.code,
  }));
  return new DaemonError('INVALID_DATA', `${event}: ${issues[0].path}: ${issues[0].message}`, { issues });
}

export interface WsOptions {
  queueLimit: number;
  maxInflight: number;
}

export function serveSocket(
  ctx: Pick<PluginContext, 'subscribe' | 'request' | 'log'>,
  door: Door,
  clients: Clients,
  ws: WebSocket,
  o: WsOptions,
): void {
  let inflight = 0;
  let alive = true;
  // One admission participant per WebSocket; closing it cancels what it asked and was not answered.
  const gone = new AbortController();
  const web = { id: webClientId('ws'), signal: gone.signal };
  const sink = {
    write: (f: OutFrame) => send(f.text),
    get buffered() {
      return ws.bufferedAmount;
    },
  };
  const queue = new ClientQueue(sink, o.queueLimit, clients.stats.ws);
  const feeds = new Map<string, Feed>();
  const client: Client = {
    transport: 'ws',
    queue,
    feeds,
    heartbeat: () => {
      if (!alive) return void ws.terminate();
      alive = false;
      ws.ping();
    },
    close: () => {
      if (queue.closed) return;
      queue.close();
      shut();
    },
    finish: (last) => {
      const closed = new Promise<void>((resolve) => {
        if (ws.readyState === ws.CLOSED) return resolve();
        ws.once('close', () => resolve());
      });
      if (queue.closed) return closed;
      queue.finish(last);
      shut();
      return closed;
    },
  };
  function shut(): void {
    gone.abort(new DaemonError('CANCELLED', 'client disconnected'));
    for (const f of feeds.values()) f.close();
    feeds.clear();
    clients.remove(client);
    // 1001: going away. The close frame follows every frame already sent.
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(1001, 'gateway closing');
  }
  clients.add(client);

  function send(text: string): void {
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > ANSWER_LIMIT) {
      ctx.log.warn({ buffered: ws.bufferedAmount }, 'websocket not reading, closed');
      ws.terminate();
      return;
    }
    // The callback runs once the frame left; then the queue may send what waits.
    ws.send(text, flushLater);
  }
  let flushPending = false;
  function flushLater(): void {
    if (flushPending || queue.depth === 0) return;
    flushPending = true;
    setImmediate(() => {
      flushPending = false;
      queue.flush();
    });
  }

  const answer = (event: string | null, cid: CorrelationId | null, data: Record<string, unknown>) =>
    send(responseFrame(event, cid, data));
  const fail = (event: string | null, cid: CorrelationId | null, e: unknown) =>
    send(errorFrame(event, cid, toDaemonError(e).toPayload()));

  async function subscribe(data: Record<string, unknown>): Promise<Record<string, unknown>> {
    const parsed = subscribeSchema.safeParse(data);
    if (!parsed.success) throw invalid('monitor:subscribe', parsed.error);
    if (feeds.size >= MAX_SUBSCRIPTIONS)
      throw new DaemonError('OVERLOADED', `at most ${MAX_SUBSCRIPTIONS} subscriptions per connection`);
    const { patterns, max_rate } = parsed.data;
    const feed = new Feed(ctx, patterns, queue, o.queueLimit, max_rate, 'w');
    feeds.set(feed.id, feed);
    // The seq the subscription starts after, read in the same turn as it was made.
    const h = await ctx.request<{ last_seq: number }>(
      'monitor:events',
      { limit: 1, patterns: ['monitor:none'] },
      { timeoutMs: 10_000 },
    );
    return Object.assign(
      { subscription_id: feed.id, patterns, seq: h.last_seq, ...(max_rate === undefined ? {} : { max_rate }) },
      { open: () => feed.open(h.last_seq) },
    );
  }

  ws.on('pong', () => void (alive = true));
  ws.on('close', client.close);
  ws.on('error', (err) => {
    ctx.log.debug({ err }, 'websocket error');
    client.close();
  });
  ws.on('message', (raw, isBinary) => {
    alive = true;
    const parsed = parseFrame(isBinary ? '' : raw.toString());
    if (!parsed.ok) return fail(parsed.event, parsed.correlationId, parsed.error);
    const { event, data, correlationId, timeoutMs } = parsed.req;
    if (inflight >= o.maxInflight)
      return fail(
        event,
        correlationId,
        new DaemonError('OVERLOADED', `more than ${o.maxInflight} requests in flight on this connection`),
      );
    inflight++;
    let work: Promise<Record<string, unknown>>;
    if (event === 'monitor:subscribe') {
      work = subscribe(data).then((r) => {
        const { open, ...rest } = r as Record<string, unknown> & { open: () => void };
        answer(event, correlationId, rest);
        open();
        return rest;
      });
    } else if (event === 'monitor:unsubscribe') {
      work = (async () => {
        const p = unsubscribeSchema.safeParse(data);
        if (!p.success) throw invalid(event, p.error);
        const f = feeds.get(p.data.subscription_id);
        if (!f) throw new DaemonError('NOT_FOUND', `no subscription "${p.data.subscription_id}" on this connection`);
        f.close();
        feeds.delete(f.id);
        const r = { unsubscribed: f.id };
        answer(event, correlationId, r);
        return r;
      })();
    } else {
      work = door.call(event, data, timeoutMs, 'ws', web).then((r) => (answer(event, correlationId, r), r));
    }
    work.catch((e: unknown) => fail(event, correlationId, e)).finally(() => void inflight--);
  });
}
