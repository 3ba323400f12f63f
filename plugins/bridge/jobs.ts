/**
 * Durable cross-host work on JetStream. A forwarded request whose event matches `durable` becomes a
 * job on the work stream (work-queue retention, deduplicated by job id); each served namespace has
 * one durable pull consumer shared by every worker that serves it, so a job is taken by one worker
 * at a time. A worker that dies stops sending progress acks and the job is redelivered after
 * `ack_wait_ms`. The answer goes to the results stream under the caller's node, deduplicated by job
 * id, and a redelivered job whose result already exists is not run again: the caller gets it once.
 */
import { nuid, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerConfig,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { DaemonError } from '../../client/errors.js';
import type { CallContext, PluginContext } from '../../daemon/plugin-api.js';
import type { BridgeConfig, Subjects } from './config.js';
import {
  decodeReply,
  decodeRequest,
  encode,
  replyError,
  wireContext,
  type ReplyEnvelope,
  type RequestEnvelope,
} from './envelope.js';
import { JobWorker } from './job-worker.js';
import type { RequestService } from './requests.js';
import type { Stats } from './stats.js';
import { sleep } from '../../client/timing.js';

const nsOf = (event: string): string => event.slice(0, event.indexOf(':'));
const nanos = (ms: number): number => ms * 1_000_000;
/** Job ids and result ids are deduplicated this long: longer than any publish retry. */
const DUP_WINDOW = nanos(10 * 60_000);

interface Pending {
  resolve(r: ReplyEnvelope): void;
  reject(e: unknown): void;
}

export class JobService {
  private jsm: JetStreamManager | null = null;
  private js: JetStreamClient | null = null;
  state: 'off' | 'setting_up' | 'ready' | 'failed' = 'off';
  lastError: string | null = null;
  private readonly pending = new Map<string, Pending>();
  private readonly workerSeen = new Map<string, number>();
  private stopped = false;
  /** The connection is gone for good (after stop): nothing more can be published. */
  private closed = false;
  private worker: JobWorker | null = null;
  private advisories: Subscription | null = null;
  workPending: Record<string, { pending: number; ack_pending: number; redelivered: number }> = {};

  constructor(
    private readonly ctx: PluginContext,
    private readonly cfg: BridgeConfig,
    private readonly subjects: Subjects,
    private readonly node: string,
    private readonly stats: Stats,
    private readonly requests: RequestService,
  ) {}

  /** Streams and this node's results consumer. Safe to call from several daemons at once. */
  /** Returns whether JetStream is ready. */
  async attach(nc: NatsConnection): Promise<boolean> {
    if (this.state === 'setting_up' || this.state === 'ready') return this.state === 'ready';
    this.state = 'setting_up';
    try {
      this.jsm = await jetstreamManager(nc, { timeout: 5000 });
      this.js = jetstream(nc, { timeout: 5000 });
      await this.ensureStreams();
      void this.resultsLoop();
      // A job every worker died on (max_deliver reached) fails now rather than at its deadline.
      this.advisories?.unsubscribe();
      this.advisories = nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${this.subjects.workStream}.*`, {
        callback: (_e, m) => void this.onMaxDeliveries(m.data),
      });
      this.state = 'ready';
      this.lastError = null;
      return true;
    } catch (e) {
      this.state = 'failed';
      this.lastError = `JetStream unavailable: ${(e as Error).message}`;
      this.ctx.log.warn({ err: e }, 'jetstream setup failed; durable work is unavailable');
      return false;
    }
  }

  /** The streams and this node's results consumer; again after a server lost its store. */
  private async ensureStreams(): Promise<void> {
    await this.ensureStream({
      name: this.subjects.workStream,
      subjects: [`${this.subjects.prefix}.work.>`],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      duplicate_window: DUP_WINDOW,
    });
    await this.ensureStream({
      name: this.subjects.resultStream,
      subjects: [`${this.subjects.prefix}.result.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      duplicate_window: DUP_WINDOW,
      max_age: nanos(this.cfg.result_ttl_s * 1000),
    });
    await this.ensureConsumer(this.subjects.resultStream, {
      durable_name: this.subjects.resultConsumer(),
      filter_subject: this.subjects.results(),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      ack_wait: nanos(30_000),
    });
  }

  private async ensureStream(cfg: Parameters<JetStreamManager['streams']['add']>[0] & { name: string }): Promise<void> {
    try {
      await this.jsm!.streams.info(cfg.name);
    } catch {
      try {
        await this.jsm!.streams.add(cfg);
      } catch (e) {
        // Another daemon may have created it in between.
        await this.jsm!.streams.info(cfg.name).catch(() => Promise.reject(e));
      }
    }
  }

  private async ensureConsumer(stream: string, cfg: Partial<ConsumerConfig> & { durable_name: string }): Promise<void> {
    try {
      await this.jsm!.consumers.add(stream, cfg);
    } catch (e) {
      // Exists with another configuration (another node created it first): use it as it is.
      await this.jsm!.consumers.info(stream, cfg.durable_name).catch(() => Promise.reject(e));
    }
  }

  // ---- caller side ----------------------------------------------------------------------------

  private async resultsLoop(): Promise<void> {
    while (!this.stopped) {
      try {
        const c = await this.js!.consumers.get(this.subjects.resultStream, this.subjects.resultConsumer());
        const it = await c.consume({ max_messages: 256 });
        for await (const m of it) {
          this.onResult(m);
          if (this.stopped) break;
        }
      } catch (e) {
        if (!this.stopped) {
          this.ctx.log.debug({ err: e }, 'results consumer interrupted; resuming');
          await sleep(500, { unref: true });
          // The server may have lost its store (a fresh one): recreate what we need.
          await this.ensureStreams().catch(() => undefined);
        }
      }
    }
  }

  private onResult(m: JsMsg): void {
    const jobId = m.subject.split('.').pop()!;
    const r = decodeReply(m.data);
    const p = this.pending.get(jobId);
    if (p) {
      this.pending.delete(jobId);
      if (r.ok) p.resolve(r.value);
      else p.reject(new DaemonError('HANDLER_ERROR', `malformed job result: ${r.error.message}`));
    } else if (m.info.redelivered) this.stats.results_duplicate++;
    else this.stats.results_orphaned++;
    m.ack();
  }

  private async onMaxDeliveries(bytes: Uint8Array): Promise<void> {
    let seq: number;
    let deliveries: number;
    try {
      ({ stream_seq: seq, deliveries } = JSON.parse(new TextDecoder().decode(bytes)) as {
        stream_seq: number;
        deliveries: number;
      });
    } catch {
      return;
    }
    const sm = await this.jsm!.streams.getMessage(this.subjects.workStream, { seq }).catch(() => null);
    if (!sm) return;
    const d = decodeRequest(sm.data);
    if (!d.ok || d.value.from !== this.node || !d.value.job_id) return;
    // Ours: tell the caller, and take the job out of the queue (nobody will take it again).
    this.pending
      .get(d.value.job_id)
      ?.reject(
        new DaemonError(
          'UNAVAILABLE',
          `${d.value.event}: gave up after ${deliveries} deliveries (every worker that took it failed or died)`,
          { job_id: d.value.job_id, deliveries },
        ),
      );
    this.pending.delete(d.value.job_id);
    await this.jsm!.streams.deleteMessage(this.subjects.workStream, seq).catch(() => undefined);
  }

  /** Is some worker (alive or not) consuming this namespace's jobs? Cached for a few seconds. */
  private async hasWorkers(ns: string): Promise<boolean> {
    const seen = this.workerSeen.get(ns);
    if (seen && Date.now() - seen < 10_000) return true;
    const ok = await this.jsm!.consumers.info(this.subjects.workStream, this.subjects.workConsumer(ns)).then(
      () => true,
      () => false,
    );
    if (ok) this.workerSeen.set(ns, Date.now());
    return ok;
  }

  /** Submit a durable job and wait for its result (within the caller's deadline, which the router enforces). */
  async submit(event: string, data: Record<string, unknown>, call: CallContext): Promise<Record<string, unknown>> {
    if (this.state !== 'ready' || !this.js)
      throw new DaemonError(
        'UNAVAILABLE',
        `${event}: durable work needs JetStream: ${this.lastError ?? 'the bridge is not connected'}`,
        { event },
      );
    const ns = nsOf(event);
    if (!(await this.hasWorkers(ns)))
      throw new DaemonError('UNAVAILABLE', `${event}: no daemon in the fleet serves "${ns}" (no worker queue for it)`, {
        event,
      });
    const jobId = `${this.node}_${nuid.next()}`;
    const env: RequestEnvelope = {
      v: 1,
      event,
      data,
      context: wireContext(call.context, this.node),
      timeout_ms: Math.max(1, call.remainingMs()),
      from: this.node,
      job_id: jobId,
      expires_at: call.deadline,
    };
    let pending!: Pending;
    const result = new Promise<ReplyEnvelope>((resolve, reject) => (pending = { resolve, reject }));
    result.catch(() => undefined);
    this.pending.set(jobId, pending);
    const onAbort = () => {
      this.pending.delete(jobId);
      pending.reject(call.signal.reason);
    };
    call.signal.addEventListener('abort', onAbort, { once: true });
    try {
      await this.publishUntil(this.subjects.work(event), encode(env), jobId, call.deadline);
      this.stats.jobs_submitted++;
      const r = await result;
      if (!r.ok) throw replyError(r);
      this.stats.jobs_completed++;
      return r.data;
    } finally {
      this.pending.delete(jobId);
      call.signal.removeEventListener('abort', onAbort);
    }
  }

  /** Publish with a message id until the stream acknowledges it: retries are deduplicated, so at most one copy is kept. */
  /** Returns whether the stream already had this message id (a duplicate it dropped). */
  private async publishUntil(subject: string, bytes: Uint8Array, msgID: string, until: number): Promise<boolean> {
    let last: unknown;
    // Not cut short by stop(): a worker finishing its last jobs during shutdown must still store their results.
    while (Date.now() < until && !this.closed) {
      try {
        const ack = await this.js!.publish(subject, bytes, {
          msgID,
          timeout: Math.max(200, Math.min(5000, until - Date.now())),
        });
        return ack.duplicate;
      } catch (e) {
        last = e;
        await sleep(250, { unref: true });
      }
    }
    throw new DaemonError(
      'UNAVAILABLE',
      `JetStream did not accept ${subject} in time: ${(last as Error)?.message ?? 'deadline passed'}`,
    );
  }

  /** Take no new jobs (shutdown has begun); running ones carry on. */
  stopTaking(): void {
    this.worker?.stopTaking();
  }

  /** Take jobs for every served namespace (only once the local daemon is ready). */
  async startWorkers(): Promise<void> {
    if (this.state !== 'ready' || this.worker || this.cfg.serve.length === 0) return;
    this.worker = new JobWorker(this.ctx, this.cfg, this.subjects, this.stats, this.requests, {
      js: this.js!,
      jsm: this.jsm!,
      publishUntil: (s, b, id, until) => this.publishUntil(s, b, id, until),
      ensureConsumer: (stream, cfg) => this.ensureConsumer(stream, cfg),
    });
    await this.worker.start();
  }

  // ---- status and stop ------------------------------------------------------------------------

  /** Queue depths per served namespace, refreshed with the heartbeat (lag of durable work). */
  async refreshLag(): Promise<void> {
    if (this.state !== 'ready' || !this.jsm) return;
    for (const ns of this.cfg.serve) {
      try {
        const ci = await this.jsm.consumers.info(this.subjects.workStream, this.subjects.workConsumer(ns));
        this.workPending[ns] = {
          pending: ci.num_pending,
          ack_pending: ci.num_ack_pending,
          redelivered: ci.num_redelivered,
        };
      } catch {
        /* reported as stale until the next refresh */
      }
    }
  }

  status(): Record<string, unknown> {
    return {
      state: this.state,
      error: this.lastError,
      streams: [this.subjects.workStream, this.subjects.resultStream],
      waiting_for_results: this.pending.size,
      running: this.worker?.inflight ?? 0,
      max_concurrent: this.cfg.max_concurrent,
      queues: this.workPending,
    };
  }

  /** Stop taking jobs; let running ones finish until the deadline, then hand the rest back to the fleet. */
  async stop(deadline: number): Promise<void> {
    this.stopped = true;
    this.advisories?.unsubscribe();
    await this.worker?.stop(deadline);
    this.closed = true;
    for (const [id, p] of this.pending) {
      p.reject(new DaemonError('SHUTTING_DOWN', 'the daemon is shutting down'));
      this.pending.delete(id);
    }
  }
}
