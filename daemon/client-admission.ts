/**
 * Requests a plugin makes on behalf of outside clients (`RequestOptions.client`: the gateway's HTTP
 * connections and WebSockets). Each client is a tenant of the admission the socket's connections
 * share, so a web client pipelining expensive requests takes its turn as a socket client does and
 * cannot hold up the others, web or socket. A client's requests start in the order they were made,
 * at most `maxInflight` running and `maxQueued` waiting; a client with none is forgotten.
 */
import { DaemonError } from '../client/errors.js';
import type { Admission, Tenant } from './admission.js';
import type { ClientGate, DispatchRequest, Router } from './router.js';

/** Cost name of an event no route answers, as the socket's connections name it (learned once, not per name). */
const UNROUTED = '\0unrouted';

interface Pending {
  req: DispatchRequest;
  signal: AbortSignal | undefined;
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

class ClientTenant implements Tenant {
  private queue: Array<Pending | undefined> = [];
  private head = 0;
  inflight = 0;

  constructor(
    readonly id: string,
    private readonly gate: ClientAdmission,
  ) {}

  get queued(): number {
    return this.queue.length - this.head;
  }

  push(p: Pending): void {
    this.queue.push(p);
  }

  peek(): string | null {
    if (this.inflight >= this.gate.maxInflight) return null;
    while (this.head < this.queue.length) {
      const p = this.queue[this.head]!;
      // Its caller stopped waiting (the client went away): it is not run at all.
      if (!p.signal?.aborted) return this.gate.router.route(p.req.event) ? p.req.event : UNROUTED;
      this.take();
      p.reject(p.signal.reason);
    }
    this.gate.idle(this);
    return null;
  }

  runNext(): boolean {
    if (this.head === this.queue.length) return false;
    const p = this.take();
    let out: unknown;
    try {
      out = this.gate.router.dispatch(p.req);
    } catch (e) {
      p.reject(e);
      return false;
    }
    if (!(out instanceof Promise)) {
      p.resolve(out);
      return false;
    }
    this.inflight++;
    out.then(p.resolve, p.reject).finally(() => {
      this.inflight--;
      if (this.queued > 0) this.gate.admission.wake(this, true);
      else this.gate.idle(this);
    });
    return true;
  }

  private take(): Pending {
    const p = this.queue[this.head]!;
    this.queue[this.head++] = undefined;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return p;
  }
}

export class ClientAdmission implements ClientGate {
  private readonly tenants = new Map<string, ClientTenant>();

  constructor(
    readonly admission: Admission,
    readonly router: Router,
    readonly maxInflight: number,
    readonly maxQueued: number,
  ) {}

  /** Clients with requests waiting or running. */
  get active(): number {
    return this.tenants.size;
  }

  request(client: string, req: DispatchRequest, signal?: AbortSignal): Promise<unknown> {
    let t = this.tenants.get(client);
    if (t === undefined) {
      t = new ClientTenant(client, this);
      this.tenants.set(client, t);
    } else if (t.queued >= this.maxQueued) {
      return Promise.reject(
        new DaemonError(
          'OVERLOADED',
          `more than ${this.maxQueued} requests waiting for this client (daemon.max_inflight_per_connection); wait for answers before sending more`,
          { max_queued: this.maxQueued },
        ),
      );
    }
    const tenant = t;
    return new Promise((resolve, reject) => {
      tenant.push({ req, signal, resolve, reject });
      this.admission.wake(tenant, true);
    });
  }

  /** Nothing waiting or running for this client: forget it (a request for it later starts afresh). */
  idle(t: ClientTenant): void {
    if (t.queued === 0 && t.inflight === 0 && this.tenants.get(t.id) === t) this.tenants.delete(t.id);
  }
}
