/**
 * A minimal newline-JSON client used against both the daemon and the echo baseline, so both pay
 * exactly the same client-side costs.
 */
import net from 'node:net';

export class LineClient {
  private buf = '';
  private waiters = new Map<string, (frame: Record<string, unknown>) => void>();
  private onEvent: ((frame: Record<string, unknown>) => void) | null = null;
  private seq = 0;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      let start = 0;
      while ((nl = this.buf.indexOf('\n', start)) >= 0) {
        const line = this.buf.slice(start, nl);
        start = nl + 1;
        const f = JSON.parse(line) as Record<string, unknown>;
        if (f.kind === 'event') {
          this.onEvent?.(f);
          continue;
        }
        const id = String(f.correlation_id);
        const w = this.waiters.get(id);
        if (w) {
          this.waiters.delete(id);
          w(f);
        }
      }
      this.buf = this.buf.slice(start);
    });
  }

  static connect(path: string): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(path, () => resolve(new LineClient(s)));
      s.once('error', reject);
    });
  }

  request(event: string, data: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = `b${++this.seq}`;
    return new Promise((resolve) => {
      this.waiters.set(id, resolve);
      this.socket.write(`{"event":${JSON.stringify(event)},"data":${JSON.stringify(data)},"correlation_id":"${id}"}\n`);
    });
  }

  events(fn: (frame: Record<string, unknown>) => void): void {
    this.onEvent = fn;
  }

  close(): void {
    this.socket.destroy();
  }
}
