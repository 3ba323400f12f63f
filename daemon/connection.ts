/**
 * One client connection: framing, admission of its requests, backpressure both ways, and the bounded
 * queue of pushed events. Memory stays bounded in bytes whatever the client does: complete request
 * lines are read ahead only up to READ_AHEAD; a request is admitted only while the answers waiting
 * to be written stay under `bufferBytes` (and fewer than `maxInflight` run); an answer that would take
 * them past `bufferMaxBytes` closes the connection with a final OVERLOADED frame; a single answer over
 * `maxAnswerBytes` is replaced by FRAME_TOO_LARGE saying how to ask for less. A subscriber that does
 * not read loses its oldest events (by count and by bytes) and is told which (`monitor:dropped`). A
 * subscription made with `max_rate` skips what exceeds its rate by choice and is told once a second
 * what it skipped (`monitor:skipped`). Which connection's request runs next is decided by Admission;
 * when its queued events are written, by EventFlush (each event's body is shared by every subscriber).
 */
import type net from 'node:net';
import type { Logger } from 'pino';
import { DaemonError } from '../client/errors.js';
import type { CorrelationId } from '../client/protocol.js';
import { rootContext } from './call-context.js';
import type { Admission, Tenant } from './admission.js';
import type { EventFlush, EventSink } from './event-flush.js';
import {
  errorFrame,
  eventBody,
  eventEnd,
  noticeFrame,
  parseRequest,
  responseFrame,
  type ParseResult,
} from './frames.js';
import { LineReader } from './line-reader.js';
import type { EmittedEvent } from './plugin-api.js';
import { RateBound } from './rate-bound.js';
import { redactDeep } from './redact.js';
import type { Router, Subscriber } from './router.js';
import { toDaemonError } from './router.js';

export interface ConnectionOptions {
  maxFrameBytes: number;
  maxInflight: number;
  subscriberQueue: number;
  defaultTimeoutMs: number;
  /** Levels of objects and arrays a request frame may nest. */
  maxJsonDepth: number;
  /** Unsent bytes past which no new request of this connection is admitted. */
  bufferBytes: number;
  /** Unsent bytes past which the connection is closed with a final OVERLOADED frame. */
  bufferMaxBytes: number;
  /** Largest answer frame; a bigger one is refused with FRAME_TOO_LARGE. */
  maxAnswerBytes: number;
}

/** Complete request lines read ahead of admission; past this the socket is not read. */
const READ_AHEAD = 256 * 1024;
/** Above this, pushed events wait in the bounded queue instead of the socket buffer. */
const EVENT_HIGH_WATER = 256 * 1024;
/** How long a connection closed for unread answers may still deliver them before it is cut. */
const OVERFLOW_LINGER_MS = 5000;
/** Cost name of a frame refused before dispatch (bad JSON, bad envelope): cheap, answered at once. */
const REFUSED = '\0refused';
/** Cost name of an event no route answers (its name is the client's to invent: not learned one by one). */
const UNROUTED = '\0unrouted';
/** How often rate-bounded subscriptions are told what they skipped. */
const SKIPPED_REPORT_MS = 1000;

let connCounter = 0;
let subCounter = 0;

export class SocketSubscription implements Subscriber {
  readonly id = `s-${++subCounter}`;
  /** Set for `max_rate` subscriptions: what is over the rate is counted, not serialised. */
  readonly bound: RateBound | null;
  /** The end of every event frame of this subscription (after the shared body). */
  readonly end = eventEnd(this.id);
  constructor(
    readonly conn: Connection,
    readonly patterns: string[],
    maxRate?: number,
  ) {
    this.bound = maxRate === undefined ? null : new RateBound(maxRate);
  }
  deliver(ev: EmittedEvent): void {
    if (this.bound && !this.bound.admit(ev.event, ev.seq)) return;
    this.conn.pushEvent(ev, this.end);
  }
}

export class Connection implements Tenant, EventSink {
  readonly id = `conn-${++connCounter}`;
  readonly subscriptions = new Map<string, SocketSubscription>();
  private readonly reader: LineReader;
  /** The next request, parsed and waiting for admission. */
  private held: ParseResult | null = null;
  private inflight = 0;
  private readPaused = false;
  /** Closed for exceeding its buffer: nothing more is admitted or written. */
  overflowed = false;
  private corked = false;
  /** A frame was sent in this turn already: the next ones are corked until the turn ends. */
  private turnOpen = false;
  private closed = false;
  private readonly abortables = new Set<{ abort(reason: unknown): void }>();
  // Event queue: arrays with a moving head, compacted now and then (cheap drop-oldest). Each event is
  // its shared body and its subscription's end; it waits here until EventFlush writes it.
  private queue: Buffer[] = [];
  private queueEnds: Buffer[] = [];
  /** The seq of each queued frame, so a drop reports the events it really lost. */
  private queueSeqs: number[] = [];
  private qHead = 0;
  private queueBytes = 0;
  private dropped = 0;
  private droppedFirstSeq = 0;
  private droppedLastSeq = 0;
  /** One timer for all of this connection's rate-bounded subscriptions, only while there are some. */
  private skippedTimer: NodeJS.Timeout | null = null;
  requests = 0;
  /** Events this connection's subscribers lost for not reading, and the monitor:dropped notices that told them. */
  eventsDropped = 0;
  dropNotices = 0;

  constructor(
    readonly socket: net.Socket,
    private readonly router: Router,
    private readonly admission: Admission,
    private readonly flush: EventFlush,
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
      this.write(
        errorFrame(
          null,
          null,
          new DaemonError(
            'FRAME_TOO_LARGE',
            `frame exceeds ${this.opts.maxFrameBytes} bytes; discarded up to its newline`,
            { max_frame_bytes: this.opts.maxFrameBytes, bytes_seen: bytes },
          ).toPayload(),
        ),
      );
    });
    if (this.reader.readyBytes >= READ_AHEAD) this.pauseReading();
    if (this.reader.hasReady) this.admission.wake(this);
  }

  /** What this connection holds for its client: answers written and not yet taken, and queued events. */
  get bufferedBytes(): number {
    return this.socket.writableLength + this.queueBytes;
  }

  /** A limit holds this connection's requests back: too many running, or too many answers unread. */
  private get blocked(): boolean {
    return this.inflight >= this.opts.maxInflight || this.socket.writableLength > this.opts.bufferBytes;
  }

  /** Admission: the event of the request that would run next, parsing it if need be. */
  peek(): string | null {
    if (this.closed || this.overflowed || this.blocked) return null;
    while (this.held === null) {
      const r = this.reader.next();
      if (!r) {
        this.resumeReading();
        return null;
      }
      if (r.kind === 'too_large') {
        this.write(
          errorFrame(null, null, {
            code: 'FRAME_TOO_LARGE',
            message: `frame of ${r.bytes} bytes exceeds ${this.opts.maxFrameBytes}`,
            details: { max_frame_bytes: this.opts.maxFrameBytes, bytes: r.bytes },
          }),
        );
        continue;
      }
      let line = r.line;
      if (line.length && line[line.length - 1] === 13) line = line.subarray(0, -1);
      if (line.length === 0) continue;
      this.held = parseRequest(line, this.opts.maxJsonDepth);
    }
    if (this.readPaused && this.reader.readyBytes < READ_AHEAD / 2) this.resumeReading();
    const h = this.held;
    if (!h.ok) return REFUSED;
    return this.router.route(h.req.event) ? h.req.event : UNROUTED;
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

  /** Admission: run the request `peek` named. True when it continues asynchronously. */
  runNext(): boolean {
    const parsed = this.held;
    if (parsed === null) return false;
    this.held = null;
    this.requests++;
    if (!parsed.ok) {
      this.write(errorFrame(parsed.event, parsed.correlationId, parsed.error.toPayload()));
      return false;
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
      return false;
    }
    if (!(out instanceof Promise)) {
      this.respond(event, correlationId, out as Record<string, unknown>);
      return false;
    }
    this.inflight++;
    out
      .then(
        (v) => this.respond(event, correlationId, v as Record<string, unknown>),
        (e) => this.respondError(event, correlationId, e),
      )
      .finally(() => {
        this.inflight--;
        if (this.held !== null || this.reader.hasReady) this.admission.wake(this);
      });
    return true;
  }

  private respond(event: string, cid: CorrelationId | null, data: Record<string, unknown>): void {
    if (this.closed || this.overflowed) return;
    let frame: string;
    try {
      frame = responseFrame(event, cid, data);
    } catch (err) {
      this.log.error({ err, event }, 'response not serialisable');
      frame = errorFrame(event, cid, {
        code: 'HANDLER_ERROR',
        message: `${event}: response could not be serialised: ${(err as Error).message}`,
      });
    }
    // A UTF-16 length of a third of the limit is the least that can be over it in UTF-8 bytes.
    const max = this.opts.maxAnswerBytes;
    if (frame.length * 3 > max) {
      const bytes = Buffer.byteLength(frame);
      if (bytes > max) frame = errorFrame(event, cid, tooLarge(event, bytes, max));
    }
    this.write(frame);
  }

  private respondError(event: string, cid: CorrelationId | null, e: unknown): void {
    const de = toDaemonError(e) ?? new DaemonError('HANDLER_ERROR', String((e as Error)?.message ?? e));
    // A backend's error may quote its URL, credentials and all.
    this.write(errorFrame(event, cid, redactDeep(de.toPayload())));
  }

  private write(s: string): void {
    if (this.closed || this.overflowed || !this.socket.writable) return;
    // Events queued before this frame leave before it, as they were emitted before it.
    if (this.qHead < this.queue.length || this.dropped > 0) this.flush.now(this);
    if (this.socket.writableLength + s.length > this.opts.bufferMaxBytes) {
      this.overflow();
      return;
    }
    this.send(s);
  }

  /**
   * The client asked for more than it reads: answers past the hard limit are not kept. It gets one
   * last frame saying so, behind what it has not read, and the connection closes.
   */
  private overflow(): void {
    const unread = this.socket.writableLength;
    this.overflowed = true;
    this.log.warn(
      { conn: this.id, unread_bytes: unread, max_bytes: this.opts.bufferMaxBytes },
      'connection closed: answers unread past the limit',
    );
    const error = new DaemonError(
      'OVERLOADED',
      `connection closed: ${unread} bytes of answers were waiting unread, past daemon.connection_buffer_max_bytes (${this.opts.bufferMaxBytes}); read answers as they come, or send fewer requests at a time`,
      {
        unread_bytes: unread,
        connection_buffer_max_bytes: this.opts.bufferMaxBytes,
      },
    );
    this.socket.write(errorFrame(null, null, error.toPayload()));
    // A client that reads gets everything up to this frame; one that does not is cut off soon after.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), OVERFLOW_LINGER_MS).unref();
  }

  /**
   * The first frame of a turn leaves at once: a lone answer, what a waiting caller needs, should not
   * wait for the rest of the turn's work (a finished call still updates its books after answering).
   * The frames after it in the same turn (a group commit's worth of results, a fan-out, a burst of
   * acks) are corked and leave together in one write when the turn's work is done.
   */
  private send(s: string | Buffer): void {
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

  pushEvent(ev: EmittedEvent, end: Buffer): void {
    if (this.closed || this.overflowed) return;
    const body = eventBody(ev);
    this.queue.push(body);
    this.queueEnds.push(end);
    this.queueSeqs.push(ev.seq);
    this.queueBytes += body.length + end.length;
    // Oldest first, by count and by bytes (the byte bound is the connection's buffer budget).
    while (
      this.qHead < this.queue.length &&
      (this.queue.length - this.qHead > this.opts.subscriberQueue || this.queueBytes > this.opts.bufferBytes)
    ) {
      const seq = this.queueSeqs[this.qHead]!;
      this.queueBytes -= this.queue[this.qHead]!.length + this.queueEnds[this.qHead]!.length;
      this.qHead++;
      if (this.dropped === 0) this.droppedFirstSeq = seq;
      this.dropped++;
      this.eventsDropped++;
      this.droppedLastSeq = seq;
    }
    if (this.qHead > 4096 && this.qHead * 2 > this.queue.length) this.compactQueue();
    this.flush.mark(this);
  }

  private compactQueue(): void {
    this.queue = this.queue.slice(this.qHead);
    this.queueEnds = this.queueEnds.slice(this.qHead);
    this.queueSeqs = this.queueSeqs.slice(this.qHead);
    this.qHead = 0;
  }

  /**
   * EventFlush: write the queued events the socket takes below its high-water mark, in one write
   * (behind the notice of what was dropped, if anything was). The rest waits for 'drain'.
   */
  flushEvents(): void {
    if (this.closed || this.overflowed || !this.socket.writable) return;
    const room = EVENT_HIGH_WATER - this.socket.writableLength;
    if (room < 0) return;
    if (this.dropped > 0) {
      const count = this.dropped;
      this.dropped = 0;
      this.dropNotices++;
      this.send(
        noticeFrame(
          'monitor:dropped',
          { count, first_seq: this.droppedFirstSeq, last_seq: this.droppedLastSeq },
          this.droppedLastSeq,
          null,
        ),
      );
    }
    if (this.qHead === this.queue.length) return;
    const parts: Buffer[] = [];
    let bytes = 0;
    // At least one event, whatever its size: a frame larger than the mark still has to go.
    while (this.qHead < this.queue.length && (bytes === 0 || bytes < room)) {
      const body = this.queue[this.qHead]!;
      const end = this.queueEnds[this.qHead++]!;
      parts.push(body, end);
      bytes += body.length + end.length;
    }
    this.queueBytes -= bytes;
    if (this.qHead === this.queue.length) {
      this.queue = [];
      this.queueEnds = [];
      this.queueSeqs = [];
      this.qHead = 0;
      this.queueBytes = 0;
    }
    // The bodies are written by reference (no copy per subscriber): one corked write, one writev.
    if (!this.corked) this.socket.cork();
    for (const part of parts) this.socket.write(part);
    if (!this.corked) this.socket.uncork();
  }

  private onDrain(): void {
    if (this.overflowed) return;
    this.flush.forget(this);
    this.flushEvents();
    if (this.held !== null || this.reader.hasReady) this.admission.wake(this);
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
    if (
      this.closed ||
      this.qHead < this.queue.length ||
      this.dropped > 0 ||
      this.socket.writableLength > EVENT_HIGH_WATER
    )
      return;
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
    this.flush.now(this);
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
    this.queueEnds = [];
    this.queueSeqs = [];
    this.queueBytes = 0;
    this.held = null;
    this.admission.forget(this);
    this.flush.forget(this);
    this.onClose(this);
  }
}

/** FRAME_TOO_LARGE for an answer: how big it was, the limit, and how to ask for less. */
function tooLarge(event: string, bytes: number, max: number) {
  return new DaemonError(
    'FRAME_TOO_LARGE',
    `${event}: the answer is ${bytes} bytes, over daemon.max_answer_bytes (${max}); ask for less at a time: a smaller limit, then the next page with the cursor the answer gives (next_cursor)`,
    {
      bytes,
      max_answer_bytes: max,
      hint: 'page: a smaller limit, then cursor = next_cursor',
    },
  ).toPayload();
}
