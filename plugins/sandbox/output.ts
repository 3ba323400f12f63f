/**
 * Exec output: demultiplex Docker's framed stream, keep at most `cap` bytes per stream, and coalesce
 * what is kept into `sandbox:output` chunks. Past the cap bytes are counted and dropped, so a process
 * printing 100 MB costs the daemon a fixed amount of memory.
 */
import { StringDecoder } from 'node:string_decoder';

export type StreamName = 'stdout' | 'stderr';

/**
 * Parses Docker's multiplexed attach format: 8-byte header (stream type, 3 zero bytes, uint32 BE
 * length) then the payload. Frames may be split across reads.
 */
export class Demuxer {
  private pending: Buffer = Buffer.alloc(0);
  constructor(private readonly onFrame: (stream: StreamName, payload: Buffer) => void) {}

  push(data: Buffer): void {
    let buf = this.pending.length ? Buffer.concat([this.pending, data]) : data;
    while (buf.length >= 8) {
      const size = buf.readUInt32BE(4);
      if (buf.length < 8 + size) break;
      const type = buf[0];
      // 1 = stdout, 2 = stderr; anything else (0 = stdin echo) is not output.
      if (type === 1 || type === 2) this.onFrame(type === 1 ? 'stdout' : 'stderr', buf.subarray(8, 8 + size));
      buf = buf.subarray(8 + size);
    }
    // Copy the remainder so a small tail does not pin a large read buffer.
    this.pending = buf.length ? Buffer.from(buf) : Buffer.alloc(0);
  }
}

export interface OutputOptions {
  capBytes: number;
  flushMs: number;
  chunkBytes: number;
  onChunk?: (stream: StreamName, chunk: string) => void;
}

class StreamBuffer {
  readonly kept: Buffer[] = [];
  keptBytes = 0;
  totalBytes = 0;
  pending = '';
  readonly decoder = new StringDecoder('utf8');
}

export class OutputCollector {
  private readonly streams = { stdout: new StreamBuffer(), stderr: new StreamBuffer() };
  private timer: NodeJS.Timeout | null = null;
  truncated = false;

  constructor(private readonly opts: OutputOptions) {}

  push(stream: StreamName, data: Buffer): void {
    const s = this.streams[stream];
    s.totalBytes += data.length;
    const room = this.opts.capBytes - s.keptBytes;
    if (room <= 0) {
      if (data.length) this.truncated = true;
      return;
    }
    const keep = data.length > room ? data.subarray(0, room) : data;
    if (keep.length < data.length) this.truncated = true;
    // Copy: the kept slice must not pin the (possibly large) socket read buffer.
    const copy = Buffer.from(keep);
    s.kept.push(copy);
    s.keptBytes += copy.length;
    if (!this.opts.onChunk) return;
    s.pending += s.decoder.write(copy);
    if (s.pending.length >= this.opts.chunkBytes) this.flushStream(stream);
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), this.opts.flushMs);
  }

  private flushStream(stream: StreamName): void {
    const s = this.streams[stream];
    while (s.pending.length > 0) {
      const chunk = s.pending.slice(0, this.opts.chunkBytes);
      s.pending = s.pending.slice(chunk.length);
      this.opts.onChunk?.(stream, chunk);
    }
  }

  /** Emit whatever is pending (on the timer, and once at the end). */
  flush(final = false): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const name of ['stdout', 'stderr'] as const) {
      if (final) this.streams[name].pending += this.streams[name].decoder.end();
      this.flushStream(name);
    }
  }

  text(stream: StreamName): string {
    return Buffer.concat(this.streams[stream].kept).toString('utf8');
  }

  bytes(stream: StreamName): number {
    return this.streams[stream].totalBytes;
  }
}
