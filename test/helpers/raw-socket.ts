/** A bare line-oriented socket client for feeding the daemon frames the real client would never send. */
import net from 'node:net';

export class RawConn {
  private buf = '';
  private frames: Array<Record<string, any>> = [];
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        if (line) this.frames.push(JSON.parse(line));
      }
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('error', () => undefined);
  }

  static connect(path: string): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(path, () => resolve(new RawConn(s)));
      s.once('error', reject);
    });
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  request(
    event: string,
    data: Record<string, unknown> = {},
    correlation_id: string | number = Math.random().toString(36).slice(2),
  ): void {
    this.send(JSON.stringify({ event, data, correlation_id }) + '\n');
  }

  /** Wait until n frames (in total, not yet taken) have arrived; take them. */
  async take(n: number, timeoutMs = 10_000): Promise<Array<Record<string, any>>> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length < n) {
      if (this.closed) throw new Error(`connection closed with ${this.frames.length}/${n} frames`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out with ${this.frames.length}/${n} frames`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => (clearTimeout(t), r()));
      });
    }
    return this.frames.splice(0, n);
  }

  async one(timeoutMs?: number): Promise<Record<string, any>> {
    return (await this.take(1, timeoutMs))[0];
  }

  pending(): number {
    return this.frames.length;
  }

  /** Every frame arrived and not yet taken; takes them. */
  drain(): Array<Record<string, any>> {
    return this.frames.splice(0);
  }

  close(): void {
    this.socket.destroy();
  }
}
