/**
 * Newline framing over a byte stream with a maximum frame size. A line longer than the limit is
 * reported once and discarded up to its newline, so one bad frame never costs the connection and a
 * line with no newline at all cannot grow memory.
 */
export type LineResult = { kind: 'line'; line: Buffer } | { kind: 'too_large'; bytes: number };

export class LineReader {
  private chunks: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes still to skip of an oversized line (until its newline). */
  private discarding = false;
  private discardedBytes = 0;
  /** Complete lines not yet taken, in the chunks they came in (each ends with a newline). */
  private ready: Buffer[] = [];
  private readyHead = 0;
  private readyPos = 0;
  /** Bytes of complete lines not yet taken: what the connection bounds its read-ahead by. */
  readyBytes = 0;

  constructor(private readonly maxFrameBytes: number) {}

  /** Add bytes. Oversized lines are reported through `onTooLarge` as soon as they are known to be. */
  push(chunk: Buffer, onTooLarge: (bytes: number) => void): void {
    if (this.discarding) {
      const nl = chunk.indexOf(10);
      if (nl < 0) {
        this.discardedBytes += chunk.length;
        return;
      }
      this.discarding = false;
      chunk = chunk.subarray(nl + 1);
      if (chunk.length === 0) return;
    }
    const nl = chunk.indexOf(10);
    if (nl < 0) {
      this.chunks.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.pendingBytes > this.maxFrameBytes) {
        onTooLarge(this.pendingBytes);
        this.chunks = [];
        this.pendingBytes = 0;
        this.discarding = true;
        this.discardedBytes = 0;
      }
      return;
    }
    // At least one newline: everything up to the last newline becomes ready lines.
    const last = chunk.lastIndexOf(10);
    const head = this.chunks.length
      ? Buffer.concat([...this.chunks, chunk.subarray(0, last + 1)])
      : chunk.subarray(0, last + 1);
    this.chunks = [];
    this.pendingBytes = 0;
    const tail = chunk.subarray(last + 1);
    // Appended, never copied together with what is still waiting: a paused consumer costs no re-copying.
    this.ready.push(head);
    this.readyBytes += head.length;
    if (tail.length) {
      if (tail.length > this.maxFrameBytes) {
        onTooLarge(tail.length);
        this.discarding = true;
      } else {
        this.chunks.push(tail);
        this.pendingBytes = tail.length;
      }
    }
  }

  /** The next complete line (without its newline), or null when none is ready. */
  next(): LineResult | null {
    const buf = this.ready[this.readyHead];
    if (!buf) return null;
    const nl = buf.indexOf(10, this.readyPos);
    // Every ready chunk ends with a newline, so nl >= 0.
    const line = buf.subarray(this.readyPos, nl);
    this.readyBytes -= nl + 1 - this.readyPos;
    this.readyPos = nl + 1;
    if (this.readyPos >= buf.length) {
      this.readyPos = 0;
      if (++this.readyHead === this.ready.length) {
        this.ready = [];
        this.readyHead = 0;
      } else if (this.readyHead > 64 && this.readyHead * 2 > this.ready.length) {
        this.ready = this.ready.slice(this.readyHead);
        this.readyHead = 0;
      }
    }
    if (line.length > this.maxFrameBytes) return { kind: 'too_large', bytes: line.length };
    return { kind: 'line', line };
  }

  get hasReady(): boolean {
    return this.readyHead < this.ready.length;
  }
}
