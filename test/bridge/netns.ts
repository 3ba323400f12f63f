/**
 * Separate "hosts" on one machine: a hub network namespace with a Linux bridge and nats-server,
 * and one namespace per daemon joined to it by a veth pair. Nothing touches the root namespace's
 * network. Needs root (CAP_NET_ADMIN/CAP_SYS_ADMIN); `netnsMissing()` says why it cannot run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventClient } from '../../client/event-client.js';
import { ROOT } from '../helpers/daemon-process.js';
import { NATS_BIN } from './nats.js';

const ip = (...args: string[]) => {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr || r.error?.message}`);
};

export function netnsMissing(): string | null {
  if (!NATS_BIN) return 'nats-server is not installed';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  const probe = `agp${process.pid % 100000}`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.status !== 0) return `ip netns unavailable: ${(r.stderr || r.error?.message || '').trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return null;
}

export interface Lab {
  hub: string;
  natsUrl: string;
  /** Take a host off the network (its link down) or back on. */
  link(host: string, up: boolean): void;
  exec(host: string, cmd: string[], env: Record<string, string>): ChildProcess;
  spawnNats(): Promise<ChildProcess>;
  destroy(): void;
}

export function createLab(hosts: string[]): Lab {
  const id = Math.random().toString(36).slice(2, 6);
  const ns = (h: string) => `ag${id}${h}`;
  const hub = ns('hub');
  const created: string[] = [];
  const dirs: string[] = [];
  const lab: Lab = {
    hub,
    natsUrl: 'nats://10.199.0.1:4222',
    link(host, up) {
      ip('-n', hub, 'link', 'set', `v${id}${host}`, up ? 'up' : 'down');
    },
    exec(host, cmd, env) {
      return spawn('ip', ['netns', 'exec', host === 'hub' ? hub : ns(host), ...cmd], {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    },
    async spawnNats() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-nats-netns-'));
      dirs.push(dir);
      const p = lab.exec(
        'hub',
        [NATS_BIN!, '-a', '10.199.0.1', '-p', '4222', '-js', '-sd', dir],
        process.env as Record<string, string>,
      );
      process.once('exit', () => p.kill('SIGKILL'));
      let out = '';
      p.stderr!.on('data', (d) => (out += d));
      const deadline = Date.now() + 10_000;
      while (!out.includes('Server is ready')) {
        if (Date.now() > deadline || p.exitCode !== null)
          throw new Error(`nats-server in the hub did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return p;
    },
    destroy() {
      for (const n of created.splice(0).reverse()) spawnSync('ip', ['netns', 'del', n]);
      for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
    },
  };
  // Namespaces are machine-wide: never leave them behind, however the test process ends.
  process.once('exit', () => lab.destroy());
  try {
    ip('netns', 'add', hub);
    created.push(hub);
    ip('-n', hub, 'link', 'set', 'lo', 'up');
    ip('-n', hub, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', hub, 'addr', 'add', '10.199.0.1/24', 'dev', 'br0');
    ip('-n', hub, 'link', 'set', 'br0', 'up');
    hosts.forEach((h, i) => {
      ip('netns', 'add', ns(h));
      created.push(ns(h));
      ip('-n', hub, 'link', 'add', `v${id}${h}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(h));
      ip('-n', hub, 'link', 'set', `v${id}${h}`, 'master', 'br0');
      ip('-n', hub, 'link', 'set', `v${id}${h}`, 'up');
      ip('-n', ns(h), 'addr', 'add', `10.199.0.${i + 2}/24`, 'dev', 'eth0');
      ip('-n', ns(h), 'link', 'set', 'eth0', 'up');
      ip('-n', ns(h), 'link', 'set', 'lo', 'up');
    });
  } catch (e) {
    lab.destroy();
    throw e;
  }
  return lab;
}

export interface NsDaemon {
  proc: ChildProcess;
  client: EventClient;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** A daemon inside a host's namespace; its Unix socket is a file, so the test reaches it from outside. */
export async function startNsDaemon(
  lab: Lab,
  host: string,
  config: string,
  extraEnv: Record<string, string>,
): Promise<NsDaemon> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), `agentd-netns-${host}-`));
  const socketPath = path.join(home, 'run', 'daemon.sock');
  fs.writeFileSync(path.join(home, 'agentd.yaml'), config);
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    AGENTD_HOME: home,
    AGENTD_SOCKET: socketPath,
    AGENTD_CONFIG: path.join(home, 'agentd.yaml'),
    ...extraEnv,
  };
  delete env.NODE_OPTIONS;
  const proc = lab.exec(host, [process.execPath, '--import', 'tsx', path.join(ROOT, 'daemon', 'main.ts')], env);
  process.once('exit', () => proc.kill('SIGKILL'));
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const client = await EventClient.connect({ socketPath, reconnect: false, connectTimeoutMs: 200 });
      await client.request('system:health', {}, { timeoutMs: 2000 });
      return {
        proc,
        client,
        output: () => out,
        async kill(signal = 'SIGKILL') {
          await client.close().catch(() => undefined);
          if (proc.exitCode === null && proc.signalCode === null) {
            const exited = new Promise((r) => proc.once('exit', r));
            proc.kill(signal);
            await exited;
          }
          fs.rmSync(home, { recursive: true, force: true });
        },
      };
    } catch {
      if (Date.now() > deadline || proc.exitCode !== null) {
        proc.kill('SIGKILL');
        throw new Error(`daemon in ${host} did not become healthy:\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
