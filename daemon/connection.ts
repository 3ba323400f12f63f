/**
 * One client connection: framing, concurrent dispatch, backpressure both ways, and the bounded
 * queue of pushed events. Memory stays bounded whatever the client does: past the in-flight limit
 * or with a full write buffer it stops reading; a subscriber that does not read loses its oldest
 * events and is told how many (`monitor:dropped`). A subscription made with `max_rate` skips what
 * exceeds its rate by choice and is told once a second what it skipped (`monitor:skipped`).
 */
import type net from 'node:net';
import type { Logger } from 'pino';
import { DaemonError } from '../client/errors.js';
import type { CorrelationId } from '../client/protocol.js';
import { rootContext } from './call-context.js';
import { errorFrame, eventFrame, noticeFrame, parseRequest, responseFrame } from './frames.js';
import { LineReader } from './line-reader.js';
import type { EmittedEvent } from './plugin-api.js';
import { RateBound } from './rate-bound.js';
import type { Router, Subscriber } from './router.js';
import { toDaemonError } from './router.js';

export interface ConnectionOptions {
  maxFrameBytes: number;
  maxInflight: number;
  subscriberQueue: number;
  defaultTimeoutMs: number;
}

/** Above this many unsent bytes we stop reading requests (the client is not reading responses). */
const WRITE_HIGH_WATER = 4 * 1024 * 1024;
/** Above this, pushed events wait in the bounded queue instead of the socket buffer. */
const EVENT_HIGH_WATER = 256 * 1024;
/** How often rate-bounded subscriptions are told what they skipped. */
const SKIPPED_REPORT_MS = 1000;

let connCounter = 0;
let subCounter = 0;

export class SocketSubscription implements Subscriber {
  readonly id = `s-${++subCounter}`;
  /** Set for `max_rate` subscriptions: what is over the rate is counted, not serialised. */
  readonly bound: RateBound | null;
  constructor(readonly conn: Connection, readonly patterns: string[], maxRate?: number) {
    this.bound = maxRate === undefined ? null : new RateBound(maxRate);
  }
  deliver(ev: EmittedEvent): void {
    if (this.bound && !this.bound.admit(ev.event, ev.seq)) return;
    this.conn.pushEvent(ev, this.id);
  }
}

export class Connection {
  readonly id = `conn-${++connCounter}`;
  readonly subscriptions = new Map<string, SocketSubscription>();
  private readonly reader: LineReader;
  private inflight = 0;
  private readPaused = false;
  private corked = false;
  /** A frame was sent in this turn already: the next ones are corked until the turn ends. */
  private turnOpen = false;
  private closed = false;
  private readonly abortables = new Set<{ abort(reason: unknown): void }>();
  // Event queue: an array with a moving head, compacted now and then (cheap drop-oldest).
  private queue: string[] = [];
  private qHead = 0;
  private dropped = 0;
  private droppedFirstSeq = 0;
  private droppedLastSeq = 0;
  /** One timer for all of this connection's rate-bounded subscriptions, only while there are some. */
  private skippedTimer: NodeJS.Timeout | null = null;
  requests = 0;

  constructor(
    readonly socket: net.Socket,
    private readonly router: Router,
    private readonly opts: ConnectionOptions,
    private readonly log: Logger,
    private readonly onClose: (c: Connection) => void,
  ) {
    this.reader = new LineReader(opts.maxFrameBytes);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('error', (err) => this.log.debug({ err, conn: this.id }, 'connection error'));
    socket.on('close', () => this.cleanup());
  }

  private onData(chunk: Buffer): void {
    this.reader.push(chunk, (bytes) => {
      this.write(errorFrame(null, null, new DaemonError('FRAME_TOO_LARGE', `frame exceeds ${this.opts.maxFrameBytes} bytes; discarded up to its newline`, { max_frame_bytes: this.opts.maxFrameBytes, bytes_seen: bytes }).toPayload()));
    });
    this.drainLines();
  }

  /** Handle ready lines until none is left or a limit says stop reading. */
  private drainLines(): void {
    while (!this.closed) {
      if (this.inflight >= this.opts.maxInflight || this.socket.writableLength > WRITE_HIGH_WATER) {
        this.pauseReading();
        return;
      }
      const r = this.reader.next();
      if (!r) break;
      if (r.kind === 'too_large') {
        this.write(errorFrame(null, null, { code: 'FRAME_TOO_LARGE', message: `frame of ${r.bytes} bytes exceeds ${this.opts.maxFrameBytes}`, details: { max_frame_bytes: this.opts.maxFrameBytes, bytes: r.bytes } }));
        continue;
      }
      let line = r.line;
      if (line.length && line[line.length - 1] === 13) line = line.subarray(0, -1);
      if (line.length === 0) continue;
      this.handleLine(line);
    }
    this.resumeReading();
  }

  private pauseReading(): void {
    if (!this.readPaused) {
      this.readPaused = true;
      this.socket.pause();
    }
  }

  private resumeReading(): void {
    if (this.readPaused && !this.closed) {
      this.readPaused = false;
      this.socket.resume();
    }
  }

  private handleLine(line: Buffer): void {
    this.requests++;
    const parsed = parseRequest(line);
    if (!parsed.ok) {
      this.write(errorFrame(parsed.event, parsed.correlationId, parsed.error.toPayload()));
      return;
    }
    const { event, data, correlationId, timeoutMs } = parsed.req;
    let out: unknown;
    try {
      out = this.router.dispatch({
        event,
        data,
        context: rootContext(),
        deadline: Date.now() + (timeoutMs ?? this.router.defaultTimeoutFor(event) ?? this.opts.defaultTimeoutMs),
        connectionId: this.id,
        external: true,
        track: this.abortables,
      });
    } catch (e) {
      this.respondError(event, correlationId, e);
      return;
    }
    if (out instanceof Promise) {
      this.inflight++;
      out.then(
        (v) => this.respond(event, correlationId, v as Record<string, unknown>),
        (e) => this.respondError(event, correlationId, e),
      ).finally(() => {
        this.inflight--;
        if (this.readPaused && this.inflight < this.opts.maxInflight) this.drainLines();
      });
    } else {
      this.respond(event, correlationId, out as Record<string, unknown>);
    }
  }

  private respond(event: string, cid: CorrelationId | null, data: Record<string, unknown>): void {
    if (this.closed) return;
    let frame: string;
    try {
      frame = responseFrame(event, cid, data);
    } catch (err) {
      this.log.error({ err, event }, 'response not serialisable');
      frame = errorFrame(event, cid, { code: 'HANDLER_ERROR', message: `${event}: response could not be serialised: ${(err as Error).message}` });
    }
    this.write(frame);
  }

  private respondError(event: string, cid: CorrelationId | null, e: unknown): void {
    const de = toDaemonError(e) ?? new DaemonError('HANDLER_ERROR', String((e as Error)?.message ?? e));
    this.write(errorFrame(event, cid, de.toPayload()));
  }

  private write(s: string): void {
    if (!this.closed && this.socket.writable) this.send(s);
  }

  /**
   * The first frame of a turn leaves at once: a lone answer, what a waiting caller needs, should not
   * wait for the rest of the turn's work (a finished call still updates its books after answering).
   * The frames after it in the same turn (a group commit's worth of results, a fan-out, a burst of
   * acks) are corked and leave together in one write when the turn's work is done.
   */
  private send(s: string): void {
    if (!this.turnOpen) {
      this.turnOpen = true;
      process.nextTick(this.endTurn);
    } else if (!this.corked) {
      this.corked = true;
      this.socket.cork();
    }
    this.socket.write(s);
  }

  private readonly endTurn = (): void => {
    this.turnOpen = false;
    if (this.corked) {
      this.corked = false;
      this.socket.uncork();
    }
  };

  // ---- pushed events --------------------------------------------------------------------------

  pushEvent(ev: EmittedEvent, subscription: string): void {
    if (this.closed) return;
    const frame = eventFrame(ev, subscription);
    if (this.qHead === this.queue.length && this.dropped === 0 && this.socket.writableLength <= EVENT_HIGH_WATER) {
      this.send(frame);
      return;
    }
    this.queue.push(frame);
    if (this.queue.length - this.qHead > this.opts.subscriberQueue) {
      this.qHead++;
      if (this.dropped === 0) this.droppedFirstSeq = ev.seq;
      this.dropped++;
      this.droppedLastSeq = ev.seq;
      if (this.qHead > 4096 && this.qHead * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.qHead);
        this.qHead = 0;
      }
    }
  }

  private onDrain(): void {
    if (this.dropped > 0) {
      const count = this.dropped;
      this.dropped = 0;
      this.send(noticeFrame('monitor:dropped', { count, first_seq: this.droppedFirstSeq, last_seq: this.droppedLastSeq }, this.droppedLastSeq, null));
    }
    while (this.qHead < this.queue.length && this.socket.writableLength <= EVENT_HIGH_WATER) {
      this.send(this.queue[this.qHead++]);
    }
    if (this.qHead === this.queue.length) {
      this.queue = [];
      this.qHead = 0;
    }
    if (this.readPaused && this.socket.writableLength <= WRITE_HIGH_WATER) this.drainLines();
  }

  // ---- subscriptions ----------------------------------------------------------------------------

  addSubscription(patterns: string[], maxRate?: number): SocketSubscription {
    const sub = new SocketSubscription(this, patterns, maxRate);
    this.subscriptions.set(sub.id, sub);
    this.router.subscribe(patterns, sub);
    if (sub.bound && !this.skippedTimer) {
      this.skippedTimer = setInterval(() => this.reportSkipped(), SKIPPED_REPORT_MS);
      this.skippedTimer.unref();
    }
    return sub;
  }

  removeSubscription(id: string): boolean {
    const sub = this.subscriptions.get(id);
    if (!sub) return false;
    this.router.unsubscribe(sub);
    this.subscriptions.delete(id);
    if (this.skippedTimer && ![...this.subscriptions.values()].some((s) => s.bound)) this.stopSkippedTimer();
    return true;
  }

  /**
   * Tell each rate-bounded subscription what it skipped since the last report. While events wait
   * in the queue the report waits too (the tally keeps counting, bounded): written behind them it
   * keeps its place in the stream, and it is never itself dropped, so delivered + skipped stays
   * exactly the number of matching events.
   */
  private reportSkipped(): void {
    if (this.closed || this.qHead < this.queue.length || this.dropped > 0 || this.socket.writableLength > EVENT_HIGH_WATER) return;
    for (const sub of this.subscriptions.values()) {
      const tally = sub.bound?.take();
      if (tally) this.write(noticeFrame('monitor:skipped', { subscription: sub.id, ...tally }, tally.last_seq, sub.id));
    }
  }

  private stopSkippedTimer(): void {
    if (this.skippedTimer) clearInterval(this.skippedTimer);
    this.skippedTimer = null;
  }

  close(): void {
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopSkippedTimer();
    for (const id of [...this.subscriptions.keys()]) this.removeSubscription(id);
    const reason = new DaemonError('CANCELLED', 'client disconnected');
    for (const c of this.abortables) c.abort(reason);
    this.abortables.clear();
    this.queue = [];
    this.onClose(this);
  }
}
