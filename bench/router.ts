/**
 * Router benchmarks: `system:ping` over the daemon's socket beside a bare newline-JSON echo server
 * on a Unix socket, in the same run, so the ratios hold on a noisy machine. The daemon is what users
 * run: the bundled build `daemon-control start` runs, with its plugins (embedded defaults); the same
 * bundle with every plugin disabled (kernel only) is measured beside it. Also fan-out to subscribed
 * clients, start-to-healthy time and idle RSS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { EventClient } from '../client/event-client.js';
import { ROOT, startDaemon } from '../test/helpers/daemon-process.js';
import { KERNEL_TEST_PLUGINS } from '../test/kernel/kit.js';
import { LineClient } from './line-client.js';
import { builtDaemonArgs, ensureBuilt } from '../daemon/build.js';
import { percentile, ratio, round, summarize } from './stats.js';

async function serial(sock: string, n: number): Promise<{ p50_us: number; p99_us: number; req_per_s: number }> {
  const c = await LineClient.connect(sock);
  for (let i = 0; i < Math.min(500, n); i++) await c.request('system:ping'); // warm up
  const samples: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await c.request('system:ping');
    samples.push(performance.now() - s);
  }
  const secs = (performance.now() - t0) / 1000;
  c.close();
  const { p50_us, p99_us } = summarize(samples);
  return { p50_us, p99_us, req_per_s: round(n / secs, 0) };
}

/** `clients` connections, each keeping `depth` requests in flight, `n` requests in all. */
async function concurrent(
  sock: string,
  clients: number,
  depth: number,
  n: number,
): Promise<{ req_per_s: number; p50_us: number; p99_us: number }> {
  const cs = await Promise.all(Array.from({ length: clients }, () => LineClient.connect(sock)));
  const per = Math.ceil(n / clients);
  const samples: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    cs.map(async (c) => {
      let sent = 0;
      const lane = async (): Promise<void> => {
        while (sent < per) {
          sent++;
          const s = performance.now();
          await c.request('system:ping');
          samples.push(performance.now() - s);
        }
      };
      await Promise.all(Array.from({ length: depth }, lane));
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  for (const c of cs) c.close();
  const { p50_us, p99_us } = summarize(samples);
  return { req_per_s: round(samples.length / secs, 0), p50_us, p99_us };
}

async function fanout(
  sock: string,
  subscribers: number,
  events: number,
): Promise<{ deliveries_per_s: number; subscribers: number; events: number }> {
  const subs = await Promise.all(Array.from({ length: subscribers }, () => LineClient.connect(sock)));
  let received = 0;
  const total = subscribers * events;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  for (const s of subs) {
    s.events((f) => {
      if (f.event === 'testkit:tick' && ++received === total) done();
    });
    await s.request('monitor:subscribe', { patterns: ['testkit:tick'] });
  }
  const emitter = await LineClient.connect(sock);
  const t0 = performance.now();
  for (let sent = 0; sent < events; sent += 1000)
    await emitter.request('testkit:emit', { count: Math.min(1000, events - sent) });
  await all;
  const secs = (performance.now() - t0) / 1000;
  for (const s of [...subs, emitter]) s.close();
  return { deliveries_per_s: round(total / secs, 0), subscribers, events };
}

function startEcho(sock: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'echo-server.ts'), sock], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    p.stdout!.once('data', () => resolve(p));
    p.once('error', reject);
  });
}

/** Spawn to first answered system:health, polled tightly; then idle RSS after a second's rest. */
async function startOnce(home: string, compiled: boolean): Promise<{ ms: number; rss_mb: number }> {
  const sock = path.join(home, 'run', 'daemon.sock');
  const env = { ...process.env, AGENTD_HOME: home, AGENTD_SOCKET: sock, AGENTD_CONFIG: path.join(home, 'agentd.yaml') };
  // `daemon-control start` runs the bundled build; the sources under tsx are what tests run.
  const args = compiled
    ? builtDaemonArgs((await ensureBuilt(ROOT)).entry)
    : ['--import', 'tsx', path.join(ROOT, 'daemon', 'main.ts')];
  const t0 = performance.now();
  const p = spawn(process.execPath, args, { cwd: ROOT, env, stdio: 'ignore' });
  for (;;) {
    try {
      const c = await EventClient.connect({ socketPath: sock, reconnect: false, connectTimeoutMs: 2 });
      await c.request('system:health');
      const ms = performance.now() - t0;
      await new Promise((r) => setTimeout(r, 1000)); // settle before reading idle memory
      const rss = Number(fs.readFileSync(`/proc/${p.pid}/statm`, 'utf8').split(' ')[1]) * 4096;
      await c.request('system:shutdown').catch(() => undefined);
      await c.close();
      await new Promise((r) => p.once('exit', r));
      return { ms: round(ms, 0), rss_mb: round(rss / 1048576, 0) };
    } catch {
      if (performance.now() - t0 > 30_000) {
        p.kill('SIGKILL');
        throw new Error('daemon did not start');
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  }
}

const median = (xs: number[]): number =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );

/**
 * The floor any Node daemon pays, in the same run: spawn a bare Node process that listens on a Unix
 * socket, until a client connects. The machine's speed moves this by tens of ms from run to run.
 */
async function bareNodeListener(runs: number): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-bench-bare-'));
    const sock = path.join(dir, 's.sock');
    const t0 = performance.now();
    const p = spawn(
      process.execPath,
      ['-e', `require('net').createServer((s) => s.end()).listen(${JSON.stringify(sock)})`],
      { stdio: 'ignore' },
    );
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const c = net.createConnection(sock);
        c.once('connect', () => (c.destroy(), resolve(true)));
        c.once('error', () => resolve(false));
      });
      if (ok) break;
      if (performance.now() - t0 > 10_000) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    xs.push(performance.now() - t0);
    p.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return round(median(xs), 0);
}

/**
 * Start-to-healthy and idle RSS, the median of `runs` starts: each first start on a fresh home
 * (databases created, migrations run), then a restart on that home (what an operator's restart costs).
 */
async function startToHealthy(
  config: string,
  compiled: boolean,
  runs: number,
): Promise<{ first_ms: number; restart_ms: number; rss_mb: number; first_all_ms: number[] }> {
  const first: number[] = [];
  const again: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < runs; i++) {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-bench-start-'));
    try {
      fs.writeFileSync(path.join(home, 'agentd.yaml'), config);
      const a = await startOnce(home, compiled);
      const b = await startOnce(home, compiled);
      first.push(a.ms);
      again.push(b.ms);
      rss.push(a.rss_mb, b.rss_mb);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  }
  return { first_ms: median(first), restart_ms: median(again), rss_mb: median(rss), first_all_ms: first };
}

/** Every plugin agentd ships (what "kernel only" disables). */
const shippedPlugins = (): string[] =>
  fs
    .readdirSync(path.join(ROOT, 'plugins'), { withFileTypes: true })
    .filter((e) => e.isDirectory() && fs.existsSync(path.join(ROOT, 'plugins', e.name, 'index.ts')))
    .map((e) => e.name);

/** The kernel test plugins' testkit (testkit:emit, for fan-out) beside the shipped plugins; the others are broken on purpose. */
const withTestkit = (disabled: string[]): string =>
  `daemon:\n  plugin_dirs: [${JSON.stringify(KERNEL_TEST_PLUGINS)}]\n  disabled_plugins: ${JSON.stringify([...disabled, 'broken_start', 'broken_load', 'cycle_a', 'cycle_b'])}\n`;

export async function benchRouter(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const n = opts.quick ? 2000 : 20_000;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-bench-'));
  const echoSock = path.join(dir, 'echo.sock');
  const echo = await startEcho(echoSock);
  const nodeArgs = builtDaemonArgs((await ensureBuilt(ROOT)).entry);
  // What `daemon-control start` runs, and the same bundle with every plugin off.
  const d = await startDaemon({ config: withTestkit([]), nodeArgs });
  const k = await startDaemon({ config: withTestkit(shippedPlugins()), nodeArgs });
  try {
    const sock = d.socketPath;
    // Interleave daemon and baseline so drift in machine load hits both alike.
    const serialEcho = await serial(echoSock, n);
    const serialDaemon = await serial(sock, n);
    const serialKernel = await serial(k.socketPath, n);
    const pipeEcho = await concurrent(echoSock, 1, 64, n * 5);
    const pipeDaemon = await concurrent(sock, 1, 64, n * 5);
    const pipeKernel = await concurrent(k.socketPath, 1, 64, n * 5);
    const multiEcho = await concurrent(echoSock, 16, 4, n * 5);
    const multiDaemon = await concurrent(sock, 16, 4, n * 5);
    const multiKernel = await concurrent(k.socketPath, 16, 4, n * 5);
    const fan = await fanout(sock, 10, opts.quick ? 5000 : 50_000);
    const fanKernel = await fanout(k.socketPath, 10, opts.quick ? 5000 : 50_000);
    const kernelOnly = `daemon:\n  disabled_plugins: ${JSON.stringify(shippedPlugins())}\n`;
    const runs = opts.quick ? 1 : 5;
    const startKernelOnly = await startToHealthy(kernelOnly, true, runs);
    const startDefaults = await startToHealthy('', true, runs);
    const startDefaultsTsx = await startToHealthy('', false, 1);
    const bare = await bareNodeListener(runs);
    return {
      daemon:
        'bundled (as daemon-control start runs it), embedded defaults; kernel_only: the same bundle with every shipped plugin disabled',
      serial: {
        daemon: serialDaemon,
        kernel_only: serialKernel,
        echo: serialEcho,
        p50_ratio: ratio(serialDaemon.p50_us, serialEcho.p50_us),
        kernel_only_p50_ratio: ratio(serialKernel.p50_us, serialEcho.p50_us),
        target_p50_ratio_max: 1.3,
      },
      pipelined_64: {
        daemon: pipeDaemon,
        kernel_only: pipeKernel,
        echo: pipeEcho,
        throughput_ratio: ratio(pipeDaemon.req_per_s, pipeEcho.req_per_s),
        kernel_only_throughput_ratio: ratio(pipeKernel.req_per_s, pipeEcho.req_per_s),
        target_ratio_min: 0.7,
      },
      clients_16: {
        daemon: multiDaemon,
        kernel_only: multiKernel,
        echo: multiEcho,
        throughput_ratio: ratio(multiDaemon.req_per_s, multiEcho.req_per_s),
        kernel_only_throughput_ratio: ratio(multiKernel.req_per_s, multiEcho.req_per_s),
        target_ratio_min: 0.7,
      },
      fanout_10_subscribers: { ...fan, kernel_only_deliveries_per_s: fanKernel.deliveries_per_s, target_min: 200_000 },
      start_to_healthy_ms: {
        runs,
        kernel_only: startKernelOnly.first_ms,
        kernel_only_restart: startKernelOnly.restart_ms,
        embedded_defaults: startDefaults.first_ms,
        embedded_defaults_restart: startDefaults.restart_ms,
        embedded_defaults_each_run: startDefaults.first_all_ms,
        embedded_defaults_from_sources_tsx: startDefaultsTsx.first_ms,
        bare_node_listener: bare,
        embedded_defaults_over_bare_node_ms: round(startDefaults.first_ms - bare, 0),
        docker_engine_present: fs.existsSync('/var/run/docker.sock'),
        target_max: 300,
      },
      idle_rss_mb: {
        kernel_only: startKernelOnly.rss_mb,
        embedded_defaults: startDefaults.rss_mb,
        embedded_defaults_from_sources_tsx: startDefaultsTsx.rss_mb,
        target_max: 80,
      },
    };
  } finally {
    echo.kill();
    await Promise.all([d.stop(), k.stop()]);
  }
}
