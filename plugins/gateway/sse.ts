/**
 * `GET /v1/stream?patterns=a,b[&max_rate=N]`: Server-Sent Events. Each message's `data` is the
 * socket protocol's event frame and its `id` the event's seq; the first message is the answer a
 * socket's `monitor:subscribe` would get (`{subscription_id, patterns, seq}`). A client that
 * reconnects with `Last-Event-ID` gets the matching events it missed from the router's history
 * first; when the history no longer reaches back that far it is told so (`gateway:gap`) before them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DaemonError } from '../../client/errors.js';
import { PATTERN_RE } from '../../client/protocol.js';
import type { EmittedEvent, PluginContext } from '../../daemon/plugin-api.js';
import { ClientQueue, type OutFrame } from './client-queue.js';
import type { Client, Clients } from './clients.js';
import { noticeFrame, responseFrame } from './envelope.js';
import { Feed } from './feed.js';

export interface StreamQuery {
  patterns: string[];
  maxRate: number | undefined;
  lastEventId: number | undefined;
}

/** Query and header → what to stream, or the typed error to answer with. */
export function parseStreamQuery(
  q: Record<string, unknown>,
  lastEventId: string | undefined,
): StreamQuery | DaemonError {
  const raw = typeof q.patterns === 'string' ? q.patterns : Array.isArray(q.patterns) ? q.patterns.join(',') : '*';
  const patterns = [...new Set(raw.split(/[\s,]+/).filter(Boolean))];
  if (patterns.length === 0) patterns.push('*');
  if (patterns.length > 100)
    return new DaemonError('INVALID_DATA', 'at most 100 patterns', {
      issues: [{ path: 'patterns', message: 'too many' }],
    });
  const badOne = patterns.find((p) => !PATTERN_RE.test(p));
  if (badOne)
    return new DaemonError(
      'INVALID_DATA',
      `patterns: "${badOne}" is not a pattern ("ns:action", "ns:*", "ns:**" or "*")`,
      { issues: [{ path: 'patterns', message: 'bad pattern' }] },
    );
  let maxRate: number | undefined;
  if (q.max_rate !== undefined) {
    maxRate = Number(q.max_rate);
    if (!Number.isInteger(maxRate) || maxRate < 1 || maxRate > 1_000_000)
      return new DaemonError('INVALID_DATA', 'max_rate: an integer from 1 to 1000000', {
        issues: [{ path: 'max_rate', message: 'bad rate' }],
      });
  }
  let last: number | undefined;
  if (lastEventId !== undefined && lastEventId.trim() !== '') {
    last = Number(lastEventId);
    if (!Number.isInteger(last) || last < 0)
      return new DaemonError('INVALID_DATA', 'Last-Event-ID: a seq (non-negative integer)', {
        issues: [{ path: 'Last-Event-ID', message: 'not a seq' }],
      });
  }
  return { patterns, maxRate, lastEventId: last };
}

interface History {
  events: EmittedEvent[];
  last_seq: number;
  oldest_seq?: number;
  truncated: boolean;
}

/**
 * Frames of one event-loop turn leave in one write, one HTTP chunk (a fan-out delivers many events
 * in a turn; a chunk per frame would cost a chunk header and a write each).
 */
class SseSink {
  private pending = '';
  /** `taken`: called when the connection took the turn's bytes without pushing back (else 'drain' follows). */
  constructor(
    private readonly res: ServerResponse,
    private readonly taken: () => void,
  ) {}
  write(f: OutFrame): void {
    if (this.pending === '') process.nextTick(this.flush);
    this.pending += f.seq === null ? `data: ${f.text}\n\n` : `id: ${f.seq}\ndata: ${f.text}\n\n`;
  }
  /** Write what this turn holds now: the response ends next. */
  readonly flush = (): void => {
    const text = this.pending;
    this.pending = '';
    if (this.res.writableEnded || this.res.destroyed) return;
    if (this.res.write(text)) this.taken();
  };
  get buffered(): number {
    return this.res.writableLength + this.pending.length;
  }
}

export async function serveStream(
  ctx: Pick<PluginContext, 'subscribe' | 'request' | 'log'>,
  clients: Clients,
  queueLimit: number,
  q: StreamQuery,
  req: IncomingMessage,
  res: ServerResponse,
  headers: Record<string, string>,
): Promise<void> {
  res.writeHead(200, {
    ...headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.socket?.setNoDelay(true);
  // A reconnecting EventSource waits this long; the dashboard's reader does the same.
  res.write('retry: 2000\n\n');
  const sink = new SseSink(res, () => queue.depth > 0 && queue.flush());
  const queue: ClientQueue = new ClientQueue(sink, queueLimit, clients.stats.sse);
  const feed = new Feed(ctx, q.patterns, queue, queueLimit, q.maxRate);
  const client: Client = {
    transport: 'sse',
    queue,
    feeds: new Map([[feed.id, feed]]),
    heartbeat: () => void res.write(': ping\n\n'),
    close: () => {
      if (queue.closed) return;
      feed.close();
      queue.close();
      clients.remove(client);
      res.end();
    },
    finish: (last) => {
      const ended = new Promise<void>((resolve) => {
        if (res.writableFinished || res.destroyed) return resolve();
        res.once('finish', resolve);
        res.once('close', resolve);
      });
      if (queue.closed) return ended;
      feed.close();
      queue.finish(last);
      sink.flush();
      clients.remove(client);
      res.end();
      return ended;
    },
  };
  clients.add(client);
  res.on('drain', () => queue.flush());
  res.on('close', client.close);
  req.on('error', client.close);

  try {
    // The history is read in the same turn as the subscription was made: nothing falls between them.
    const since = q.lastEventId;
    const h = await ctx.request<History>(
      'monitor:events',
      since === undefined
        ? { patterns: q.patterns, limit: 1 }
        : { patterns: q.patterns, since_seq: since, limit: queueLimit },
      { timeoutMs: 10_000 },
    );
    const answer = {
      subscription_id: feed.id,
      patterns: q.patterns,
      seq: h.last_seq,
      ...(q.maxRate === undefined ? {} : { max_rate: q.maxRate }),
    };
    queue.push({ seq: null, text: responseFrame('monitor:subscribe', null, answer) });
    if (since !== undefined) {
      const oldest = h.oldest_seq ?? 0;
      const firstReplayed = h.events.length ? h.events[0].seq : h.last_seq + 1;
      // Events after `since` that are gone: older than the history, or beyond what one replay sends.
      const goneUntil = h.truncated ? firstReplayed - 1 : oldest - 1;
      if (goneUntil > since) {
        queue.push({
          seq: null,
          text: noticeFrame(
            'gateway:gap',
            {
              last_event_id: since,
              first_seq: since + 1,
              last_seq: goneUntil,
              oldest_seq: oldest,
              reason: h.truncated ? 'too_many' : 'history',
            },
            goneUntil,
            feed.id,
          ),
        });
      }
      for (const ev of h.events) feed.deliver(ev);
    }
    feed.open(h.last_seq);
  } catch (e) {
    ctx.log.warn({ err: e }, 'stream start failed');
    queue.push({ seq: null, text: noticeFrame('gateway:error', { message: (e as Error).message }, 0, feed.id) });
    client.close();
  }
}
