/**
 * Running one exec through a zygote container's attached stdio (see zygote.ts): write the request and
 * the caller's stdin, stream and cap the output, answer when the supervisor reports the status. The
 * timeout and cancellation kill the container through the API, as for any exec.
 */
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import type { Language } from './languages.js';
import { Demuxer, OutputCollector, type StreamName } from './output.js';
import type { ExecResult, ExecSpec, RunOptions } from './runner.js';
import { encodeRequest, MarkerScanner } from './zygote.js';

/** Output a zygote writes before its exec (interpreter start warnings) is kept up to this much. */
const EARLY_MAX = 64 * 1024;
/** After a kill the stream should end at once; never wait on it for longer than this. */
const END_GRACE_MS = 5_000;
/** Waiting for the engine's exit status when the supervisor could not report one. */
const WAIT_MS = 5_000;

/** What an exec receives from a zygote's stream once it holds it. */
export interface AttachmentSink {
  /** Output, markers removed. */
  data: (stream: StreamName, data: Buffer) => void;
  /** The request was read; the code starts. */
  go: () => void;
  /** Both streams are complete (the supervisor reported the status), or the connection ended. */
  end: () => void;
}

/**
 * The attached stdio of one zygote container, from before its start until its exec is over. The
 * markers are read from the first byte on (a container is `ready` once its interpreter waits); output
 * that arrives before an exec holds the stream is kept (bounded) and handed to it first.
 */
export class Attachment {
  private early: Array<[StreamName, Buffer]> = [];
  private earlyBytes = 0;
  private sink: AttachmentSink | null = null;
  private onIdleEnd: (() => void) | null = null;
  private readyWaiters: Array<() => void> = [];
  readonly scanners: Record<StreamName, MarkerScanner>;
  ended = false;
  ready = false;
  went = false;

  constructor(
    readonly stream: Duplex,
    readonly language: Language,
    readonly nonce: string,
  ) {
    const out = (s: StreamName) => (d: Buffer) => {
      if (this.sink) this.sink.data(s, d);
      else if (this.earlyBytes < EARLY_MAX) {
        this.early.push([s, Buffer.from(d)]);
        this.earlyBytes += d.length;
      }
    };
    const signal = (word: 'go' | 'ready') => {
      if (word === 'ready') {
        this.ready = true;
        for (const w of this.readyWaiters.splice(0)) w();
      } else if (!this.went) {
        this.went = true;
        this.sink?.go();
      }
    };
    this.scanners = {
      stdout: new MarkerScanner(nonce, out('stdout'), signal),
      stderr: new MarkerScanner(nonce, out('stderr'), signal),
    };
    const demux = new Demuxer((s, p) => {
      this.scanners[s].push(p);
      if (this.complete) this.sink?.end();
    });
    stream.on('data', (d: Buffer) => demux.push(d));
    const end = () => {
      if (this.ended) return;
      this.ended = true;
      this.scanners.stdout.end();
      this.scanners.stderr.end();
      for (const w of this.readyWaiters.splice(0)) w();
      if (this.sink) this.sink.end();
      else this.onIdleEnd?.();
    };
    stream.once('end', end);
    stream.once('close', end);
    stream.on('error', end);
  }

  /** The supervisor reported the status on both streams. */
  get complete(): boolean {
    return this.scanners.stdout.done && this.scanners.stderr.done;
  }

  /** The status the supervisor reported, if it did. */
  get status(): number | null {
    return this.scanners.stdout.status ?? this.scanners.stderr.status;
  }

  /** Resolves once the interpreter waits, or the stream ended. */
  whenReady(): Promise<void> {
    if (this.ready || this.ended) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Called if the stream ends while no exec holds it (the container died idle). */
  whenIdleEnds(fn: () => void): void {
    this.onIdleEnd = fn;
    if (this.ended && !this.sink) fn();
  }

  /** Take the stream for the exec: earlier output first, then live data, markers and the end. */
  take(sink: AttachmentSink): void {
    this.onIdleEnd = null;
    this.sink = sink;
    for (const [s, d] of this.early.splice(0)) sink.data(s, d);
    this.earlyBytes = 0;
    if (this.went) sink.go();
    if (this.ended || this.complete) sink.end();
  }

  /** Release the connection (the container is being removed). */
  close(): void {
    this.stream.destroy();
  }
}

/** The exec never reached the code: the container was gone (or going) before it read the request. */
export class NotDelivered extends Error {
  readonly statusCode = 409;
  constructor(detail: string) {
    super(`container ended before the exec started${detail ? `: ${detail}` : ''}`);
  }
}

export async function runAttached(
  container: Docker.Container,
  att: Attachment,
  spec: ExecSpec,
  opts: RunOptions,
): Promise<ExecResult & { cancelled: boolean }> {
  const started = Date.now();
  const out = new OutputCollector(opts.output);
  // Output is held until the supervisor confirms the request arrived, so `sandbox:exec_started`
  // precedes the first `sandbox:output` and a container that died first streams nothing.
  let going = false;
  const held: Array<[StreamName, Buffer]> = [];
  let heldBytes = 0;
  let finish: () => void = () => undefined;

  let timedOut = false;
  let cancelled = false;
  let killing: Promise<void> | null = null;
  let graceTimer: NodeJS.Timeout | null = null;
  const kill = () => {
    if (!killing) {
      killing = opts.kill().catch(() => undefined);
      graceTimer = setTimeout(() => finish(), END_GRACE_MS);
    }
    return killing;
  };
  const timer = setTimeout(
    () => {
      timedOut = true;
      void kill();
    },
    Math.max(1, spec.timeoutMs - (Date.now() - started)),
  );
  const onAbort = () => {
    cancelled = true;
    void kill();
  };

  try {
    await new Promise<void>((resolve) => {
      finish = resolve;
      att.take({
        data: (stream, data) => {
          if (going) out.push(stream, data);
          else if (heldBytes < EARLY_MAX) {
            held.push([stream, Buffer.from(data)]);
            heldBytes += data.length;
          }
        },
        go: () => {
          if (going) return;
          going = true;
          opts.onStart?.();
          for (const [s, d] of held.splice(0)) out.push(s, d);
        },
        end: () => resolve(),
      });
      if (opts.signal?.aborted) onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (att.ended) return;
      att.stream.write(encodeRequest(spec.language, spec.code, spec.env));
      if (spec.stdin !== undefined && spec.stdin.length > 0) att.stream.write(spec.stdin);
      // End of file for the code's stdin: the container was created with StdinOnce.
      att.stream.end();
    });
  } finally {
    clearTimeout(timer);
    if (graceTimer) clearTimeout(graceTimer);
    opts.signal?.removeEventListener('abort', onAbort);
  }

  let exitCode: number | null = null;
  if (timedOut || cancelled) {
    await killing;
  } else if (!going) {
    // Nothing of the code ran. If the supervisor still reported a status (an interpreter missing
    // from the image, say), that is the answer; otherwise the container went away first.
    if (att.status === null)
      throw new NotDelivered(
        Buffer.concat(held.map(([, d]) => d))
          .toString('utf8')
          .trim()
          .slice(0, 300),
      );
    going = true;
    for (const [s, d] of held.splice(0)) out.push(s, d);
    exitCode = att.status;
  } else {
    exitCode = att.status;
    // The supervisor itself was killed (code can signal it: same user): the container's own exit
    // status is the best answer there is.
    if (exitCode === null) exitCode = await containerExit(container);
  }
  out.flush(true);
  // A process SIGKILLed without our timeout is most likely the OOM killer's doing; ask the engine.
  const oom = !timedOut && !cancelled && (exitCode === 137 || exitCode === null) ? await opts.oomSince(started) : false;
  return {
    exec_id: spec.execId,
    exit_code: exitCode,
    stdout: out.text('stdout'),
    stderr: out.text('stderr'),
    duration_ms: Date.now() - started,
    timed_out: timedOut,
    oom_killed: oom,
    truncated: out.truncated,
    stdout_bytes: out.bytes('stdout'),
    stderr_bytes: out.bytes('stderr'),
    cancelled,
  };
}

async function containerExit(container: Docker.Container): Promise<number | null> {
  let t: NodeJS.Timeout | undefined;
  try {
    const r = (await Promise.race([
      container.wait(),
      new Promise((resolve) => {
        t = setTimeout(() => resolve(null), WAIT_MS);
      }),
    ])) as { StatusCode?: number } | null;
    return typeof r?.StatusCode === 'number' ? r.StatusCode : null;
  } finally {
    clearTimeout(t);
  }
}
