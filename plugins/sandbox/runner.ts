/**
 * Run one piece of code inside an already started container: stage the code (and files), exec the
 * interpreter, stream and cap the output, and enforce the timeout by having the caller kill the
 * container through the API (a process in the sandbox cannot ignore that, unlike a signal).
 */
import type Docker from 'dockerode';
import { DaemonError } from '../../daemon/plugin-api.js';
import { CODE_DIR, LANGUAGES, WORKSPACE, type Language } from './languages.js';
import { tar, type TarEntry } from './files.js';
import { Demuxer, OutputCollector, type OutputOptions } from './output.js';

export interface ExecSpec {
  execId: string;
  language: Language;
  code: string;
  files: TarEntry[];
  env: Record<string, string>;
  stdin?: string;
  timeoutMs: number;
}

export interface ExecResult {
  exec_id: string;
  exit_code: number | null;
  stdout: string;
  stderr: string;
  duration_ms: number;
  timed_out: boolean;
  oom_killed: boolean;
  truncated: boolean;
  stdout_bytes: number;
  stderr_bytes: number;
  /** Sessions only: the workspace went past limits.session_workspace_mb (the exec was killed if still running). */
  workspace_exceeded?: boolean;
}

export interface RunOptions {
  user: string;
  output: OutputOptions;
  /** Aborts the exec (client gone, daemon stopping): treated like a timeout but reported as cancelled. */
  signal?: AbortSignal;
  /** The exec went past a limit the daemon watches (a session's workspace size): killed like at a timeout. */
  limit?: AbortSignal;
  /** Kill everything running in the container; called at the timeout or on abort. */
  kill: () => Promise<void>;
  /** The container serves more execs after this one (a session). */
  reused?: boolean;
  /** Called once the exec is running (after this, failures are the code's, not the container's). */
  onStart?: () => void;
  /** Whether the container saw an OOM kill since `since` (ms epoch). */
  oomSince: (since: number) => Promise<boolean>;
}

/** Code up to this size travels in an env var (one exec); larger code, or any files, go in a tar. */
const INLINE_CODE_MAX = 96 * 1024;
/** After a kill the stream should end at once; never wait on it for longer than this. */
const END_GRACE_MS = 5_000;

export async function runExec(
  container: Docker.Container,
  spec: ExecSpec,
  opts: RunOptions,
): Promise<ExecResult & { cancelled: boolean; limited: boolean }> {
  const started = Date.now();
  const lang = LANGUAGES[spec.language];
  // Flat in /tmp: the shell writes it with a builtin redirection, no mkdir process to pay for.
  const codePath = `${CODE_DIR}-${spec.execId}-${lang.file}`;
  // NUL cannot travel in an environment variable; such code goes through the tar like big code does.
  const inline =
    spec.files.length === 0 && Buffer.byteLength(spec.code) <= INLINE_CODE_MAX && !spec.code.includes('\0');
  if (!inline) await stage(container, spec, codePath, opts.user);

  // The interpreter starts through sh so the inline code can be written first; `exec` then replaces sh,
  // and the variable holding the code is unset so the program does not see it.
  const argv = lang.argv(codePath).map(shellQuote).join(' ');
  const write = inline ? `printf '%s' "$AGENTD_CODE" > '${codePath}' && unset AGENTD_CODE && ` : '';
  // A reused container (session) must not collect code files in its small /tmp: run as a child and
  // remove the file after. A one-shot container is destroyed anyway, so exec straight into the code.
  const script = opts.reused ? `${write}${argv}; rc=$?; rm -f '${codePath}'; exit $rc` : `${write}exec ${argv}`;
  const env = Object.entries(spec.env).map(([k, v]) => `${k}=${v}`);
  if (inline) env.push(`AGENTD_CODE=${spec.code}`);
  const hasStdin = spec.stdin !== undefined;
  const exec = await container.exec({
    Cmd: ['/bin/sh', '-c', script],
    Env: env,
    User: opts.user,
    WorkingDir: WORKSPACE,
    AttachStdin: hasStdin,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
  });
  const out = new OutputCollector(opts.output);
  const demux = new Demuxer((s, p) => out.push(s, p));
  const stream = await exec.start({ hijack: hasStdin, stdin: hasStdin });
  opts.onStart?.();

  let timedOut = false;
  let cancelled = false;
  let killing: Promise<void> | null = null;
  let finish: () => void = () => undefined;
  let graceTimer: NodeJS.Timeout | null = null;
  const kill = () => {
    if (!killing) {
      killing = opts.kill().catch(() => undefined);
      // If the engine never closes the stream after the kill, stop waiting for it anyway.
      graceTimer = setTimeout(() => {
        stream.destroy();
        finish();
      }, END_GRACE_MS);
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
  let limited = false;
  const onLimit = () => {
    limited = true;
    void kill();
  };
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  opts.limit?.addEventListener('abort', onLimit, { once: true });

  try {
    await new Promise<void>((resolve) => {
      finish = resolve;
      stream.on('data', (b: Buffer) => demux.push(b));
      stream.once('end', resolve);
      stream.once('close', resolve);
      stream.once('error', () => resolve());
      if (hasStdin) {
        stream.write(spec.stdin);
        stream.end();
      }
    });
  } finally {
    clearTimeout(timer);
    if (graceTimer) clearTimeout(graceTimer);
    opts.signal?.removeEventListener('abort', onAbort);
    opts.limit?.removeEventListener('abort', onLimit);
  }
  out.flush(true);

  let exitCode: number | null = null;
  let pid = -1;
  if (!timedOut && !cancelled && !limited) ({ code: exitCode, pid } = await execState(exec));
  else await killing;
  // The runtime could not start the process (the container was stopping under it): the engine
  // answers exit 126, writes its own error into the stream and never records a pid. Not the code's
  // failure, so say so and let the caller retry. A process that ran has a pid: code that merely
  // exits 126 (whatever it prints) is never taken for this and never re-run.
  if (exitCode === 126 && pid === 0) {
    throw Object.assign(new Error(`exec did not start: ${out.text('stdout').trim()}`), { statusCode: 409 });
  }
  // A process SIGKILLed without our timeout is most likely the OOM killer's doing; ask the engine.
  const oom =
    !timedOut && !cancelled && !limited && (exitCode === 137 || exitCode === null)
      ? await opts.oomSince(started)
      : false;
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
    limited,
  };
}

/** Write code and files into the container with `tar -x`, running as the sandbox user. */
async function stage(container: Docker.Container, spec: ExecSpec, codePath: string, user: string): Promise<void> {
  await stageFiles(
    container,
    [
      { name: codePath.slice(1), data: Buffer.from(spec.code, 'utf8'), mode: 0o644 },
      ...spec.files.map((f) => ({ ...f, name: `${WORKSPACE.slice(1)}/${f.name}` })),
    ],
    user,
  );
}

/** Files for /workspace, written through the container with `tar -x` as the sandbox user. */
export async function stageWorkspace(container: Docker.Container, files: TarEntry[], user: string): Promise<void> {
  await stageFiles(
    container,
    files.map((f) => ({ ...f, name: `${WORKSPACE.slice(1)}/${f.name}` })),
    user,
  );
}

/** Unpack `entries` (paths relative to /) inside the container: no symlink on the host can redirect it. */
async function stageFiles(container: Docker.Container, entries: TarEntry[], user: string): Promise<void> {
  const [uid, gid] = user.split(':').map(Number);
  const archive = tar(entries, uid ?? 1000, gid ?? uid ?? 1000);
  const exec = await container.exec({
    // -m: do not restore mtimes; -o: no ownership games. Extract relative to / (paths are pre-validated).
    Cmd: ['tar', '-x', '-m', '-o', '-f', '-', '-C', '/'],
    User: user,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
  });
  const stream = await exec.start({ hijack: true, stdin: true });
  let errText = '';
  const demux = new Demuxer((_, p) => {
    if (errText.length < 4096) errText += p.toString('utf8');
  });
  await new Promise<void>((resolve) => {
    stream.on('data', (b: Buffer) => demux.push(b));
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
    stream.end(archive);
  });
  const code = await exitCodeOf(exec);
  if (code !== 0) {
    const full = /No space left|File too large|Disk quota|Wrote only/i.test(errText);
    throw new DaemonError(
      full ? 'INVALID_DATA' : 'HANDLER_ERROR',
      `staging files failed${full ? ': they do not fit in the workspace' : ''}: ${errText.trim().slice(0, 500)}`,
      { exit_code: code },
    );
  }
}

async function exitCodeOf(exec: Docker.Exec): Promise<number | null> {
  return (await execState(exec)).code;
}

/** Exit code, and the process id the engine recorded (0 when the runtime never started it). */
async function execState(exec: Docker.Exec): Promise<{ code: number | null; pid: number }> {
  // The stream can close a moment before the engine records the exit code: ask again soon, then
  // less often (about half a second in all).
  for (let waited = 0, delay = 2; waited < 500; waited += delay, delay = Math.min(25, delay * 2)) {
    const info = await exec.inspect();
    // Engines that do not report Pid give -1 ("unknown"), which is never taken for "not started".
    if (!info.Running) return { code: info.ExitCode ?? null, pid: typeof info.Pid === 'number' ? info.Pid : -1 };
    await new Promise((r) => setTimeout(r, delay));
  }
  return { code: null, pid: -1 };
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
