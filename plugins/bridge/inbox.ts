/**
 * Request/reply over one inbox subscription per connection: each request publishes with a reply
 * subject under the inbox and waits for the one answer there. The client library's own request()
 * does the same, but builds Error objects (with their stack traces) for every request that succeeds
 * and races a timer promise; on a cross-daemon call that was a large share of the caller's CPU.
 */
import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';

/** Why a request got no answer: nobody listens on the subject, the time ran out, or the connection closed. */
export class InboxError extends Error {
  constructor(
    readonly kind: 'no_responders' | 'timeout' | 'closed',
    message: string,
  ) {
    super(message);
    this.name = 'InboxError';
  }
}

interface Pending {
  resolve(m: Msg): void;
  reject(e: InboxError): void;
  timer: NodeJS.Timeout;
}

export class Inbox {
  private readonly prefix = `${createInbox()}.`;
  private readonly pending = new Map<string, Pending>();
  private next = 0;
  private readonly sub: Subscription;

  constructor(readonly nc: NatsConnection) {
    this.sub = nc.subscribe(`${this.prefix}*`, { callback: (_e, m) => this.answer(m) });
    void nc.closed().then(() => this.close());
  }

  /** Publish `data` to `subject` and wait at most `timeoutMs` for the answer. */
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Msg> {
    const token = (++this.next).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(token);
        reject(new InboxError('timeout', 'timeout'));
      }, timeoutMs);
      this.pending.set(token, { resolve, reject, timer });
      try {
        this.nc.publish(subject, data, { reply: this.prefix + token });
      } catch (e) {
        clearTimeout(timer);
        this.pending.delete(token);
        reject(new InboxError('closed', (e as Error).message));
      }
    });
  }

  private answer(m: Msg): void {
    const token = m.subject.slice(this.prefix.length);
    const p = this.pending.get(token);
    if (!p) return; // late, after its timeout
    this.pending.delete(token);
    clearTimeout(p.timer);
    // The server's own answer when no subscriber had the subject: an empty message with status 503.
    if (m.data.length === 0 && m.headers?.code === 503) p.reject(new InboxError('no_responders', 'no responders'));
    else p.resolve(m);
  }

  /** Every request still waiting fails at once (the connection is gone). */
  close(): void {
    for (const [token, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(token);
      p.reject(new InboxError('closed', 'connection closed'));
    }
    if (!this.nc.isClosed()) this.sub.unsubscribe();
  }
}
