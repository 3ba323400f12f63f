/**
 * The worker side of durable jobs: one fetch loop per served namespace, pulling only as many jobs
 * as it has free slots (so nothing waits in a local buffer while its ack timer runs), progress acks
 * while a job runs, the result stored before the job is acked. A redelivered job whose result
 * already exists is acked without running again.
 */
import {
  AckPolicy,
  type ConsumerConfig,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import type { PluginContext } from '../../daemon/plugin-api.js';
import type { BridgeConfig, Subjects } from './config.js';
import { decodeRequest, encode, errorReply, type ReplyEnvelope } from './envelope.js';
import { asDaemonError, type RequestService } from './requests.js';
import type { Stats } from './stats.js';
import { sleep } from '../../client/timing.js';

const nanos = (ms: number): number => ms * 1_000_000;
/** Failures that say "not here, not now": another worker may succeed, so the job goes back. */
const HAND_BACK = new Set(['SHUTTING_DOWN', 'UNAVAILABLE', 'OVERLOADED']);

export interface JetStreamHandles {
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** Publish with a message id until the stream acknowledges it (retries are deduplicated). */
  publishUntil(subject: string, bytes: Uint8Array, msgID: string, until: number): Promise<boolean>;
  ensureConsumer(stream: string, cfg: Partial<ConsumerConfig> & { durable_name: string }): Promise<void>;
}

export class JobWorker {
  private stopped = false;
  inflight = 0;
  private slotWaiters: Array<() => void> = [];
  private readonly running = new Set<JsMsg>();
  lastError: string | null = null;

  constructor(
    private readonly ctx: PluginContext,
    private readonly cfg: BridgeConfig,
    private readonly subjects: Subjects,
    private readonly stats: Stats,
    private readonly requests: RequestService,
    private readonly handles: JetStreamHandles,
  ) {}

  /** Take jobs for every served namespace. */
  async start(): Promise<void> {
    for (const ns of this.cfg.serve) {
      try {
        await this.ensureConsumer(ns);
        void this.loop(ns);
      } catch (e) {
        this.lastError = `work queue for "${ns}": ${(e as Error).message}`;
        this.ctx.log.warn({ err: e, ns }, 'work consumer not created');
      }
    }
  }

  private ensureConsumer(ns: string): Promise<void> {
    return this.handles.ensureConsumer(this.subjects.workStream, {
      durable_name: this.subjects.workConsumer(ns),
      filter_subject: this.subjects.workNs(ns),
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(this.cfg.ack_wait_ms),
      max_deliver: this.cfg.max_deliver,
      max_ack_pending: 10_000,
    });
  }

  private async slot(): Promise<void> {
    while (this.inflight >= this.cfg.max_concurrent && !this.stopped)
      await new Promise<void>((r) => this.slotWaiters.push(r));
  }

  private release(): void {
    this.inflight--;
    this.slotWaiters.shift()?.();
  }

  private async loop(ns: string): Promise<void> {
    while (!this.stopped) {
      await this.slot();
      if (this.stopped) break;
      try {
        const c = await this.handles.js.consumers.get(this.subjects.workStream, this.subjects.workConsumer(ns));
        const batch = await c.fetch({ max_messages: this.cfg.max_concurrent - this.inflight, expires: 2000 });
        for await (const m of batch) {
          if (this.stopped) {
            m.nak();
            continue;
          }
          this.inflight++;
          void this.run(m).finally(() => this.release());
        }
      } catch (e) {
        if (!this.stopped) {
          this.ctx.log.debug({ err: e, ns }, 'work fetch failed; retrying');
          await sleep(500, { unref: true });
          // A server that lost its store has no queue for us any more: make it again.
          await this.ensureConsumer(ns).catch(() => undefined);
        }
      }
    }
  }

  private async run(m: JsMsg): Promise<void> {
    const d = decodeRequest(m.data);
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
      const done = await this.handles.jsm.streams
        .getMessage(this.subjects.resultStream, { last_by_subj: resultSubject })
        .catch(() => null);
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
      reply = {
        ok: true,
        node: this.requests.node,
        data: await this.requests.run({ ...env, timeout_ms: Math.max(1, expiresAt - Date.now()) }),
        job_id: env.job_id,
      };
    } catch (e) {
      const de = asDaemonError(e);
      // Cut short by this daemon stopping (not the job's own failure): another worker runs it.
      const interrupted = this.stopped && de.code === 'CANCELLED';
      if ((HAND_BACK.has(de.code) || interrupted) && m.info.deliveryCount < this.cfg.max_deliver) {
        this.stats.jobs_handed_back++;
        m.nak(this.stopped ? 0 : 500);
        return;
      }
      reply = errorReply(this.requests.node, de, env.job_id);
    } finally {
      clearInterval(progress);
      this.running.delete(m);
    }
    try {
      // A duplicate: another worker answered first (this one was cut off or thought dead); dropped by the stream.
      if (await this.handles.publishUntil(resultSubject, encode(reply), `r_${env.job_id}`, expiresAt + 5000))
        this.stats.results_deduplicated++;
      m.ack();
    } catch (e) {
      // Unacked, the job goes to another worker (or fails by max_deliver) rather than vanishing.
      this.ctx.log.warn({ err: e, job: env.job_id }, 'job result not stored; handing the job back');
      m.nak();
    }
  }

  stopTaking(): void {
    this.stopped = true;
    for (const w of this.slotWaiters.splice(0)) w();
  }

  /** Stop taking jobs; let running ones finish until the deadline, then hand the rest back to the fleet. */
  async stop(deadline: number): Promise<void> {
    this.stopTaking();
    while (this.running.size > 0 && Date.now() < deadline - 500) await sleep(50, { unref: true });
    for (const m of this.running) m.nak();
  }
}
