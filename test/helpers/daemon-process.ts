/**
 * Start a real daemon process on a temporary home for integration tests.
 * Each test file gets its own home, socket and databases, so files run in parallel.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EventClient } from '../../client/event-client.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface DaemonOptions {
  /** Reuse a home (restart tests); default a fresh temp dir. */
  home?: string;
  /** Extra environment (AGENTD_* overrides, ANTHROPIC_BASE_URL, …). */
  env?: Record<string, string>;
  /** agentd.yaml content written into the home and named by AGENTD_CONFIG. */
  config?: string;
  /** Milliseconds to wait for health (default 15 s). */
  readyTimeoutMs?: number;
  /**
   * What node runs (default the sources under tsx, as tests do). Benchmarks pass the bundled build's
   * arguments (`builtDaemonArgs`), which is what `daemon-control start` runs.
   */
  nodeArgs?: string[];
}

export interface DaemonHandle {
  home: string;
  socketPath: string;
  proc: ChildProcess;
  client: EventClient;
  /** Everything the daemon wrote to stdout/stderr so far. */
  output(): string;
  /** New client connection (close it yourself). */
  connect(): Promise<EventClient>;
  /** Send a signal and wait for exit; resolves to the exit code (or signal name). */
  kill(signal?: NodeJS.Signals): Promise<number | string | null>;
  /** Graceful stop through system:shutdown; resolves to the exit code. */
  stop(): Promise<number | string | null>;
  exited: Promise<number | string | null>;
}

export function tempHome(prefix = 'agentd-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * Daemons this test process started and that still run. A test that fails before its own cleanup
 * must not leave them behind (they would load the machine for every later test): when the test
 * process exits they are killed.
 */
const live = new Set<ChildProcess>();
const killLive = (): void => {
  for (const p of live) p.kill('SIGKILL');
};
process.once('exit', killLive);
// Under vitest a file's worker may be ended without an 'exit' event: clean up after each file too.
if (process.env.VITEST) (await import('vitest')).afterAll(killLive);

export async function startDaemon(opts: DaemonOptions = {}): Promise<DaemonHandle> {
  const home = opts.home ?? tempHome();
  const socketPath = path.join(home, 'run', 'daemon.sock');
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    AGENTD_HOME: home,
    AGENTD_SOCKET: socketPath,
    AGENTD_CONFIG: path.join(home, 'agentd.yaml'),
    // No warm sandbox containers unless a test asks: each costs real CPU on a two-core machine.
    AGENTD_SANDBOX_POOL_SIZE: '0',
    // Every answer of every test daemon is checked against its event's response schema.
    AGENTD_DAEMON_CHECK_RESPONSES: 'true',
    ...opts.env,
  };
  delete env.NODE_OPTIONS; // vitest's worker hooks must not leak into the daemon
  if (opts.config !== undefined || !fs.existsSync(env.AGENTD_CONFIG)) {
    fs.writeFileSync(env.AGENTD_CONFIG, opts.config ?? '');
  }
  const proc = spawn(
    process.execPath,
    [
      ...(process.env.PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROF_DIR}`] : []),
      ...(opts.nodeArgs ?? ['--import', 'tsx', path.join(ROOT, 'daemon', 'main.ts')]),
    ],
    {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | string | null>((resolve) => {
    proc.once('exit', (code, sig) => resolve(code ?? sig));
  });
  let client: EventClient;
  try {
    client = await waitHealthy(socketPath, opts.readyTimeoutMs ?? 15_000, exited);
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(`daemon did not become healthy: ${(e as Error).message}\n${out}`);
  }
  const handle: DaemonHandle = {
    home,
    socketPath,
    proc,
    client,
    exited,
    output: () => out,
    connect: () => EventClient.connect({ socketPath, reconnect: false }),
    async kill(signal = 'SIGKILL') {
      await client.close().catch(() => undefined);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
    async stop() {
      await client.request('system:shutdown', { reason: 'test' }).catch(() => undefined);
      await client.close().catch(() => undefined);
      const t = setTimeout(() => proc.kill('SIGKILL'), 40_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
  return handle;
}

async function waitHealthy(socketPath: string, timeoutMs: number, exited: Promise<unknown>): Promise<EventClient> {
  const deadline = Date.now() + timeoutMs;
  let dead = false;
  void exited.then(() => (dead = true));
  while (Date.now() < deadline && !dead) {
    try {
      const c = await EventClient.connect({ socketPath, reconnect: false, connectTimeoutMs: 200 });
      await c.request('system:health', {}, { timeoutMs: 2000 });
      return c;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(dead ? 'daemon exited' : 'timed out');
}

/** True when CI=true: a missing service must fail, not skip. */
export const IN_CI = process.env.CI === 'true';
