/**
 * The bounded queue between the router and one web client (an SSE stream or a WebSocket), as a
 * socket connection has: frames go straight out while the client keeps up; past a high-water mark
 * of unsent bytes they wait in a queue of bounded length, whose oldest are dropped on overflow,
 * and the client is told how many (`monitor:dropped {count, first_seq, last_seq}`) before the next
 * frame it gets. A client that does not read costs the daemon at most the queue and the mark.
 */
import { noticeFrame } from './envelope.js';

export interface OutFrame {
  /** The event's seq (SSE `id`), or null for frames that are not a resumable position. */
  seq: number | null;
  text: string;
}

/** Where frames go: an SSE response or a WebSocket. */
export interface Sink {
  write(frame: OutFrame): void;
  /** Bytes written but not yet taken by the client's connection. */
  readonly buffered: number;
}

/** Unsent bytes above which frames wait in the queue instead of the connection's buffer. */
export const HIGH_WATER = 256 * 1024;

export interface QueueStats {
  delivered: number;
  dropped: number;
}

export class ClientQueue {
  private queue: OutFrame[] = [];
  private head = 0;
  private dropped = 0;
  private droppedFirst = 0;
  private droppedLast = 0;
  closed = false;

  constructor(
    private readonly sink: Sink,
    private readonly limit: number,
    private readonly stats: QueueStats,
  ) {}

  get depth(): number {
    return this.queue.length - this.head;
  }

  push(frame: OutFrame): void {
    if (this.closed) return;
    if (this.depth === 0 && this.dropped === 0 && this.sink.buffered <= HIGH_WATER) {
      this.out(frame);
      return;
    }
    this.queue.push(frame);
    if (this.depth > this.limit) {
      const lost = this.queue[this.head++];
      const seq = lost.seq ?? this.droppedLast;
      if (this.dropped === 0) this.droppedFirst = seq;
      this.dropped++;
      this.droppedLast = seq;
      this.stats.dropped++;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
    }
  }

  /** The client's connection took some bytes: send what waits, the loss notice first. */
  flush(): void {
    if (this.closed) return;
    if (this.dropped > 0 && this.sink.buffered <= HIGH_WATER) {
      const count = this.dropped;
      this.dropped = 0;
      this.out({
        seq: null,
        text: noticeFrame(
          'monitor:dropped',
          { count, first_seq: this.droppedFirst, last_seq: this.droppedLast },
          this.droppedLast,
          null,
        ),
      });
    }
    while (this.depth > 0 && this.sink.buffered <= HIGH_WATER) this.out(this.queue[this.head++]);
    if (this.depth === 0) {
      this.queue = [];
      this.head = 0;
    }
  }

  private out(frame: OutFrame): void {
    this.stats.delivered++;
    this.sink.write(frame);
  }

  /**
   * The last frame this client gets (the gateway is closing): what the connection takes now goes
   * first, what it cannot take is dropped and said so, then `last`, past any high-water mark.
   */
  finish(last: OutFrame): void {
    if (this.closed) return;
    this.flush();
    for (; this.head < this.queue.length; this.head++) {
      const seq = this.queue[this.head].seq ?? this.droppedLast;
      if (this.dropped === 0) this.droppedFirst = seq;
      this.dropped++;
      this.droppedLast = seq;
      this.stats.dropped++;
    }
    if (this.dropped > 0) {
      const count = this.dropped;
      this.dropped = 0;
      this.out({
        seq: null,
        text: noticeFrame(
          'monitor:dropped',
          { count, first_seq: this.droppedFirst, last_seq: this.droppedLast },
          this.droppedLast,
          null,
        ),
      });
    }
    this.out(last);
    this.close();
  }

  close(): void {
    this.closed = true;
    this.queue = [];
    this.head = 0;
  }
}
