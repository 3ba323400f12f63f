/**
 * A real nats-server for the bridge tests: loopback, ephemeral port, JetStream in a temp store,
 * bounded start, killed after. Restartable on the same port and store.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const NATS_BIN = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' }).stdout.trim() || null;

/** Why the suite cannot run here, or null. In CI a missing server is a failure, not a skip. */
export function natsMissing(): string | null {
  if (NATS_BIN) return null;
  if (process.env.CI === 'true')
    throw new Error('nats-server is not installed (CI=true: the bridge suite must run; .ci/run installs it)');
  return 'nats-server is not installed; bridge integration tests skipped';
}

export interface NatsServer {
  url: string;
  port: number;
  dir: string;
  output(): string;
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** Stop the server, keeping port and store, until `up()`. */
  down(): Promise<void>;
  up(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startNats(opts: { port?: number } = {}): Promise<NatsServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-nats-'));
  let out = '';
  let proc: ChildProcess;
  let port = opts.port ?? -1;

  const launch = async (): Promise<void> => {
    for (const f of fs.readdirSync(dir)) if (f.endsWith('.ports')) fs.rmSync(path.join(dir, f));
    proc = spawn(
      NATS_BIN!,
      ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', path.join(dir, 'store'), '-ports_file_dir', dir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    // Never outlive the test process, however it ends.
    const p = proc;
    const reap = () => p.kill('SIGKILL');
    process.once('exit', reap);
    p.once('exit', () => process.removeListener('exit', reap));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`nats-server exited: ${out}`);
      const pf = fs.readdirSync(dir).find((f) => f.endsWith('.ports'));
      if (pf && out.includes('Server is ready')) {
        const ports = JSON.parse(fs.readFileSync(path.join(dir, pf), 'utf8')) as { nats: string[] };
        port = Number(new URL(ports.nats[0]).port);
        return;
      }
      await sleep(50);
    }
    proc.kill('SIGKILL');
    throw new Error(`nats-server did not start within 10 s: ${out}`);
  };

  const kill = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };

  await launch();
  return {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    dir,
    output: () => out,
    async stop() {
      await kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await kill();
      await launch();
    },
    down: kill,
    up: launch,
  };
}
