/**
 * Durable cross-host work on JetStream. A forwarded request whose event matches `durable` becomes a
 * job on the work stream (work-queue retention, deduplicated by job id); each served namespace has
 * one durable pull consumer shared by every worker that serves it, so a job is taken by one worker
 * at a time. A worker that dies stops sending progress acks and the job is redelivered after
 * `ack_wait_ms`. The answer goes to the results stream under the caller's node, deduplicated by job
 * id, and a redelivered job whose result already exists is not run again: the caller gets it once.
 */
import { nuid, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { DaemonError } from '../../client/errors.js';
import type { CallContext, PluginContext } from '../../daemon/plugin-api.js';
import type { BridgeConfig, Subjects } from './config.js';
import { decode, encode, errorReply, replyEnvelope, replyError, requestEnvelope, wireContext, type ReplyEnvelope, type RequestEnvelope } from './envelope.js';
import { asDaemonError, type RequestService } from './requests.js';
import type { Stats } from './stats.js';

const nsOf = (event: string): string => event.slice(0, event.indexOf(':'));
const nanos = (ms: number): number => ms * 1_000_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
/** Failures that say "not here, not now": another worker may succeed, so the job goes back. */
const HAND_BACK = new Set(['SHUTTING_DOWN', 'UNAVAILABLE', 'OVERLOADED']);

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
  private inflight = 0;
  private slotWaiters: Array<() => void> = [];
  private readonly running = new Set<JsMsg>();
  private loops: Promise<void>[] = [];
  workPending: Record<string, { pending: number; ack_pending: number; redelivered: number }> = {};

  constructor(private readonly ctx: PluginContext, private readonly cfg: BridgeConfig, private readonly subjects: Subjects, private readonly node: string, private readonly stats: Stats, private readonly requests: RequestService) {}

  /** Streams and this node's results consumer. Safe to call from several daemons at once. */
  async attach(nc: NatsConnection): Promise<void> {
    this.state = 'setting_up';
    try {
      this.jsm = await jetstreamManager(nc, { timeout: 5000 });
      this.js = jetstream(nc, { timeout: 5000 });
      const dup = nanos(10 * 60_000);
      await this.ensureStream({ name: this.subjects.workStream, subjects: [`${this.subjects.prefix}.work.>`], retention: RetentionPolicy.Workqueue, storage: StorageType.File, duplicate_window: dup });
      await this.ensureStream({ name: this.subjects.resultStream, subjects: [`${this.subjects.prefix}.result.>`], retention: RetentionPolicy.Limits, storage: StorageType.File, duplicate_window: dup, max_age: nanos(this.cfg.result_ttl_s * 1000) });
      await this.ensureConsumer(this.subjects.resultStream, {
        durable_name: this.subjects.resultConsumer(),
        filter_subject: this.subjects.results(),
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.New,
        ack_wait: nanos(30_000),
      });
      this.loops.push(this.resultsLoop());
      this.state = 'ready';
      this.lastError = null;
    } catch (e) {
      this.state = 'failed';
      this.lastError = `JetStream unavailable: ${(e as Error).message}`;
      this.ctx.log.warn({ err: e }, 'jetstream setup failed; durable work is unavailable');
    }
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

  private async ensureConsumer(stream: string, cfg: Parameters<JetStreamManager['consumers']['add']>[1] & { durable_name: string }): Promise<void> {
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
        if (!this.stopped) this.ctx.log.debug({ err: e }, 'results consumer interrupted; resuming');
      }
      if (!this.stopped) await sleep(500);
    }
  }

  private onResult(m: JsMsg): void {
    const jobId = m.subject.split('.').pop()!;
    const r = decode(m.data, replyEnvelope);
    const p = this.pending.get(jobId);
    if (p) {
      this.pending.delete(jobId);
      if (r.ok) p.resolve(r.value);
      else p.reject(new DaemonError('HANDLER_ERROR', `malformed job result: ${r.error.message}`));
    } else if (m.info.redelivered) this.stats.results_duplicate++;
    else this.stats.results_orphaned++;
    m.ack();
  }

  /** Is some worker (alive or not) consuming this namespace's jobs? Cached for a few seconds. */
  private async hasWorkers(ns: string): Promise<boolean> {
    const seen = this.workerSeen.get(ns);
    if (seen && Date.now() - seen < 10_000) return true;
    const ok = await this.jsm!.consumers.info(this.subjects.workStream, this.subjects.workConsumer(ns)).then(() => true, () => false);
    if (ok) this.workerSeen.set(ns, Date.now());
    return ok;
  }

  /** Submit a durable job and wait for its result (within the caller's deadline, which the router enforces). */
  async submit(event: string, data: Record<string, unknown>, call: CallContext): Promise<Record<string, unknown>> {
    if (this.state !== 'ready' || !this.js) throw new DaemonError('UNAVAILABLE', `${event}: durable work needs JetStream: ${this.lastError ?? 'the bridge is not connected'}`, { event });
    const ns = nsOf(event);
    if (!(await this.hasWorkers(ns))) throw new DaemonError('UNAVAILABLE', `${event}: no daemon in the fleet serves "${ns}" (no worker queue for it)`, { event });
    const jobId = `${this.node}_${nuid.next()}`;
    const env: RequestEnvelope = { v: 1, event, data, context: wireContext(call.context, this.node), timeout_ms: Math.max(1, call.remainingMs()), from: this.node, job_id: jobId, expires_at: call.deadline };
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
  private async publishUntil(subject: string, bytes: Uint8Array, msgID: string, until: number): Promise<void> {
    let last: unknown;
    while (Date.now() < until && !this.stopped) {
      try {
        await this.js!.publish(subject, bytes, { msgID, timeout: Math.max(200, Math.min(5000, until - Date.now())) });
        return;
      } catch (e) {
        last = e;
        await sleep(250);
      }
    }
    throw new DaemonError('UNAVAILABLE', `JetStream did not accept ${subject} in time: ${(last as Error)?.message ?? 'deadline passed'}`);
  }

  // ---- worker side ----------------------------------------------------------------------------

  /** Take jobs for every served namespace (only once the local daemon is ready). */
  async startWorkers(): Promise<void> {
    if (this.state !== 'ready') return;
    for (const ns of this.cfg.serve) {
      try {
        await this.ensureConsumer(this.subjects.workStream, {
          durable_name: this.subjects.workConsumer(ns),
          filter_subject: this.subjects.workNs(ns),
          ack_policy: AckPolicy.Explicit,
          ack_wait: nanos(this.cfg.ack_wait_ms),
          max_deliver: this.cfg.max_deliver,
          max_ack_pending: 10_000,
        });
        this.loops.push(this.workLoop(ns));
      } catch (e) {
        this.lastError = `work queue for "${ns}": ${(e as Error).message}`;
        this.ctx.log.warn({ err: e, ns }, 'work consumer not created');
      }
    }
  }

  private async slot(): Promise<void> {
    while (this.inflight >= this.cfg.max_concurrent) await new Promise<void>((r) => this.slotWaiters.push(r));
  }

  private release(): void {
    this.inflight--;
    this.slotWaiters.shift()?.();
  }

  private async workLoop(ns: string): Promise<void> {
    while (!this.stopped) {
      await this.slot();
      if (this.stopped) break;
      try {
        const c = await this.js!.consumers.get(this.subjects.workStream, this.subjects.workConsumer(ns));
        const batch = await c.fetch({ max_messages: this.cfg.max_concurrent - this.inflight, expires: 2000 });
        for await (const m of batch) {
          if (this.stopped) {
            m.nak();
            continue;
          }
          this.inflight++;
          void this.runJob(m).finally(() => this.release());
        }
      } catch (e) {
        if (!this.stopped) {
          this.ctx.log.debug({ err: e, ns }, 'work fetch failed; retrying');
          await sleep(500);
        }
      }
    }
  }

  private async runJob(m: JsMsg): Promise<void> {
    const d = decode(m.data, requestEnvelope);
    if (!d.ok || !d.value.job_id || this.subjects.work(d.value.event) !== m.subject) {
      // Nobody can be answered: refuse it for good rather than redeliver it forever.
      this.stats.requests_refused++;
      m.term(d.ok ? 'job id missing or subject mismatch' : d.error.message);
      return;
    }
    const env = d.value;
    const resultSubject = this.subjects.result(env.from, env.job_id!);
    if (m.info.redelivered) {
      this.stats.jobs_redelivered++;
      const done = await this.jsm!.streams.getMessage(this.subjects.resultStream, { last_by_subj: resultSubject }).catch(() => null);
      if (done) {
        this.stats.jobs_skipped_done++;
        m.ack();
        return;
      }
    }
    const expiresAt = env.expires_at ?? Date.now() + env.timeout_ms;
    if (expiresAt <= Date.now()) {
      m.ack(); // The caller stopped waiting; running it now would be work nobody receives.
      return;
    }
    this.running.add(m);
    const progress = setInterval(() => m.working(), Math.max(200, Math.floor(this.cfg.ack_wait_ms / 3)));
    progress.unref();
    let reply: ReplyEnvelope;
    try {
      this.stats.jobs_run++;
      reply = { ok: true, node: this.node, data: await this.requests.run({ ...env, timeout_ms: Math.max(1, expiresAt - Date.now()) }), job_id: env.job_id };
    } catch (e) {
      const de = asDaemonError(e);
      if ((HAND_BACK.has(de.code) || this.stopped) && m.info.deliveryCount < this.cfg.max_deliver) {
        this.stats.jobs_handed_back++;
        m.nak(this.stopped ? 0 : 500);
        return;
      }
      reply = errorReply(this.node, de, env.job_id);
    } finally {
      clearInterval(progress);
      this.running.delete(m);
    }
    try {
      await this.publishUntil(resultSubject, encode(reply), `r_${env.job_id}`, expiresAt + 5000);
    } catch (e) {
      this.ctx.log.warn({ err: e, job: env.job_id }, 'job result not stored; the caller times out');
    }
    m.ack();
  }

  // ---- status and stop ------------------------------------------------------------------------

  /** Queue depths per served namespace, refreshed with the heartbeat (lag of durable work). */
  async refreshLag(): Promise<void> {
    if (this.state !== 'ready' || !this.jsm) return;
    for (const ns of this.cfg.serve) {
      try {
        const ci = await this.jsm.consumers.info(this.subjects.workStream, this.subjects.workConsumer(ns));
        this.workPending[ns] = { pending: ci.num_pending, ack_pending: ci.num_ack_pending, redelivered: ci.num_redelivered };
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
      running: this.inflight,
      max_concurrent: this.cfg.max_concurrent,
      queues: this.workPending,
    };
  }

  /** Stop taking jobs; let running ones finish until the deadline, then hand the rest back to the fleet. */
  async stop(deadline: number): Promise<void> {
    this.stopped = true;
    for (const w of this.slotWaiters.splice(0)) w();
    while (this.running.size > 0 && Date.now() < deadline - 500) await sleep(50);
    for (const m of this.running) m.nak();
    for (const [id, p] of this.pending) {
      p.reject(new DaemonError('SHUTTING_DOWN', 'the daemon is shutting down'));
      this.pending.delete(id);
    }
  }
}
