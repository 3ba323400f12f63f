/**
 * Creating, removing and reaping sandbox containers, and noticing OOM kills. Every container carries
 * the sandbox label and this daemon's owner label; removal is always forced and tracked, so shutdown can
 * wait for it and a crash leaves only labelled containers that the next start removes.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { DaemonError } from '../../daemon/plugin-api.js';
import type { SandboxConfig } from './config.js';
import { containerSpec, LABEL_OWNER, LABEL_PROCESS, type ContainerSpecInput, type Limits } from './hardening.js';
import { isConnectionError, type Engine } from './engine.js';
import { Attachment } from './attached.js';
import type { Language } from './languages.js';
import { newNonce } from './zygote.js';

export interface Managed {
  id: string;
  container: Docker.Container;
  image: string;
  kind: ContainerSpecInput['kind'];
  limits: Limits;
  /** A zygote's attached stdio (one-shot containers): the exec is written to it. */
  attachment?: Attachment;
}

export type CreateInput = Omit<ContainerSpecInput, 'owner' | 'config' | 'name' | 'process' | 'zygote'> & {
  /** Start a zygote waiting for one exec in this language instead of an idle main process. */
  language?: Language;
};

export class Containers {
  private readonly removing = new Set<Promise<void>>();
  private readonly ooms = new Map<string, number[]>();
  private events: NodeJS.ReadableStream | null = null;

  constructor(
    private readonly engine: Engine,
    private readonly config: SandboxConfig,
    readonly owner: string,
    private readonly log: Logger,
  ) {}

  get docker(): Docker {
    return this.engine.docker;
  }

  async create(input: CreateInput): Promise<Managed> {
    const { language, ...rest } = input;
    const name = `agentd-sbx-${this.owner.slice(0, 8)}-${input.kind}-${crypto.randomBytes(4).toString('hex')}`;
    const zygote = language ? { language, nonce: newNonce() } : undefined;
    const spec = containerSpec({
      ...rest,
      zygote,
      owner: this.owner,
      config: this.config,
      name,
      process: PROCESS_ID ?? undefined,
    });
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer(spec);
    } catch (err) {
      throw this.translate(err, input.image);
    }
    let attachment: Attachment | undefined;
    try {
      // Attached before the start, so nothing the zygote writes is missed.
      if (zygote) {
        const stream = (await container.attach({
          stream: true,
          stdin: true,
          stdout: true,
          stderr: true,
          hijack: true,
        })) as unknown as Duplex;
        attachment = new Attachment(stream, zygote.language, zygote.nonce);
      }
      await container.start();
    } catch (err) {
      attachment?.close();
      void this.remove(container); // never rejects; settle() waits for it
      throw this.translate(err, input.image);
    }
    return { id: container.id, container, image: input.image, kind: input.kind, limits: input.limits, attachment };
  }

  /** Force-remove in the background; `settle()` waits for every removal started so far. */
  remove(container: Docker.Container, attachment?: Attachment): Promise<void> {
    attachment?.close();
    const p = container
      .remove({ force: true, v: true })
      .catch((err: { statusCode?: number }) => {
        // 404: already gone; 409: removal already in progress. Both mean it is going away. An engine
        // that went away took it along or leaves it for the reap when it is back.
        if (err?.statusCode !== 404 && err?.statusCode !== 409 && !isConnectionError(err))
          this.log.warn({ err, container: container.id }, 'container removal failed');
      })
      .finally(() => {
        this.removing.delete(p);
        this.ooms.delete(container.id);
      });
    this.removing.add(p);
    return p;
  }

  /** Remove a managed container and release its attached stdio. */
  discard(m: Managed): Promise<void> {
    return this.remove(m.container, m.attachment);
  }

  async settle(): Promise<void> {
    while (this.removing.size) await Promise.allSettled([...this.removing]);
  }

  /** Remove every container labelled as this daemon's (leftovers of a crash, or at shutdown). */
  async reap(keep: Set<string> = new Set()): Promise<number> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL_OWNER}=${this.owner}`] } });
    const gone = list.filter((c) => !keep.has(c.Id));
    await Promise.all(gone.map((c) => this.remove(this.docker.getContainer(c.Id))));
    return gone.length;
  }

  /**
   * Remove containers whose creating daemon ran on this host and is dead, whatever its home: a
   * daemon killed -9 whose home is never started again (a test's temp dir) would otherwise leak them.
   */
  async reapDead(): Promise<number> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [LABEL_PROCESS] } });
    const dead = list.filter((c) => {
      const [host, pid, start] = (c.Labels[LABEL_PROCESS] ?? '').split('/');
      if (host !== os.hostname() || !pid || !start) return false;
      return processStart(Number(pid)) !== start;
    });
    await Promise.all(dead.map((c) => this.remove(this.docker.getContainer(c.Id))));
    return dead.length;
  }

  async imagePresent(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return false;
      throw err;
    }
  }

  /** Watch the engine's `oom` events for our containers (the exec's exit code alone cannot tell). */
  async watchOoms(): Promise<void> {
    this.unwatchOoms();
    const stream = (await this.docker.getEvents({
      filters: { type: ['container'], event: ['oom'], label: [`${LABEL_OWNER}=${this.owner}`] },
    })) as NodeJS.ReadableStream;
    this.events = stream;
    let buf = '';
    stream.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const ev = JSON.parse(line) as { id?: string; Actor?: { ID?: string } };
          const id = ev.id ?? ev.Actor?.ID;
          if (id) this.ooms.set(id, [...(this.ooms.get(id) ?? []).slice(-9), Date.now()]);
        } catch {
          /* a partial or foreign line; ignore */
        }
      }
    });
    stream.on('error', () => undefined);
    // The engine may drop the stream while staying up: watch again, or OOM kills would go unreported.
    stream.on('close', () => {
      if (this.events !== stream) return; // replaced or unwatched on purpose
      this.events = null;
      if (!this.engine.up) return; // recovery re-watches when the engine is back
      const t = setTimeout(
        () => void this.watchOoms().catch((err) => this.log.warn({ err }, 'oom watch failed')),
        1_000,
      );
      t.unref();
    });
  }

  unwatchOoms(): void {
    const stream = this.events as { destroy?: () => void } | null;
    this.events = null;
    stream?.destroy?.();
  }

  /**
   * Whether the container had an OOM kill at or after `since`. The event can trail the exec's end by a
   * few milliseconds, so wait briefly before answering no.
   */
  async oomSince(id: string, since: number, waitMs = 300): Promise<boolean> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      if ((this.ooms.get(id) ?? []).some((t) => t >= since - 50)) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Turn an engine error into the catalogue's codes. */
  translate(err: unknown, image?: string): Error {
    if (err instanceof DaemonError) return err;
    if (isConnectionError(err)) {
      this.engine.markDown(err);
      return new DaemonError('UNAVAILABLE', this.engine.state.reason ?? 'docker engine unreachable');
    }
    const e = err as { statusCode?: number; json?: { message?: string }; message?: string };
    // Not an engine answer: a bug of ours; let the kernel report it as HANDLER_ERROR with its stack.
    if (e?.statusCode === undefined) return err instanceof Error ? err : new Error(String(err));
    const msg = e.json?.message ?? e.message ?? String(err);
    if (e.statusCode === 404 && image && /image|No such/i.test(msg)) {
      const hint =
        image === this.config.image
          ? ' (build it with `scripts/sandbox-image.sh build`)'
          : ' (pull or build it first; the sandbox never pulls)';
      return new DaemonError('NOT_FOUND', `image ${image} not found${hint}`, { image });
    }
    return new DaemonError('HANDLER_ERROR', `docker: ${msg}`, { status: e.statusCode });
  }
}

/** A process's start time (clock ticks since boot, /proc/<pid>/stat field 22), null if gone or not Linux. */
export function processStart(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

const START = processStart(process.pid);
/** This daemon process, as recorded on its containers (null where /proc is unavailable). */
const PROCESS_ID = START ? `${os.hostname()}/${process.pid}/${START}` : null;
