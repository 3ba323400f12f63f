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
  /** Complete lines not yet taken (when the consumer paused). */
  private ready: Buffer | null = null;
  private readyPos = 0;

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
    const head = this.chunks.length ? Buffer.concat([...this.chunks, chunk.subarray(0, last + 1)]) : chunk.subarray(0, last + 1);
    this.chunks = [];
    this.pendingBytes = 0;
    const tail = chunk.subarray(last + 1);
    if (this.ready && this.readyPos < this.ready.length) {
      this.ready = Buffer.concat([this.ready.subarray(this.readyPos), head]);
    } else {
      this.ready = head;
    }
    this.readyPos = 0;
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
    const buf = this.ready;
    if (!buf || this.readyPos >= buf.length) return null;
    const nl = buf.indexOf(10, this.readyPos);
    // `ready` always ends with a newline, so nl >= 0.
    const line = buf.subarray(this.readyPos, nl);
    this.readyPos = nl + 1;
    if (this.readyPos >= buf.length) {
      this.ready = null;
      this.readyPos = 0;
    }
    if (line.length > this.maxFrameBytes) return { kind: 'too_large', bytes: line.length };
    return { kind: 'line', line };
  }

  get hasReady(): boolean {
    return this.ready !== null && this.readyPos < this.ready.length;
  }
}
