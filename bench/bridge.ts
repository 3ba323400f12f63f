/**
 * Bridge benchmarks, each beside its baseline in the same run, on the bundled daemon (what
 * `daemon-control start` runs):
 * - cross-daemon `system:ping` beside a bare NATS request/reply between two clients of the same
 *   server, in alternating rounds: made by a plugin inside daemon a (bench/fixtures/benchcall; the
 *   same process hops as the bare request: caller → server → responder and back), and made by a
 *   socket client (client → a → NATS → b and back, via bridge:request) beside a local system:ping
 *   (the hop the client adds); the daemons' CPU time per call beside the bare clients';
 * - remote exec throughput through JetStream with 1, 2 and 3 workers. The exec is simulated
 *   (`testwork:exec` sleeping `EXEC_MS`, `SLOTS` jobs at once per worker) so the figure measures the
 *   bridge's scaling, not Docker's. With BENCH_BRIDGE_SANDBOX=1 and a Docker engine, the same with
 *   real `sandbox:exec` (`bash -c true`) on 1, 2 and 3 sandbox workers — on one machine they share
 *   its cores and its Docker engine, so expect little scaling there.
 */
import fs from 'node:fs';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import type { EventClient } from '../client/event-client.js';
import { builtDaemonArgs, ensureBuilt } from '../daemon/build.js';
import type { DaemonHandle } from '../test/helpers/daemon-process.js';
import { ROOT, startDaemon, tempHome } from '../test/helpers/daemon-process.js';
import { natsMissing, startNats } from '../test/bridge/nats.js';
import { FIXTURES, OTHERS, startNode, stopAndClean } from '../test/bridge/fleet.js';
import { ratio, round, summarize } from './stats.js';

const BENCH_FIXTURES = path.join(ROOT, 'bench', 'fixtures');

/** CPU time (user + system) a process has used, ms. */
function cpuMs(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) * 10;
}

const EXEC_MS = 100;
const SLOTS = 4;

/** `lanes` callers each awaiting one call at a time, `n` calls in all. */
async function load(
  n: number,
  lanes: number,
  call: () => Promise<unknown>,
): Promise<{ per_s: number; p50_us: number; p99_us: number; n: number }> {
  const samples: number[] = [];
  let started = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (started < n) {
        started++;
        const s = performance.now();
        await call();
        samples.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const { p50_us, p99_us } = summarize(samples);
  return { per_s: round(samples.length / secs, 0), p50_us, p99_us, n: samples.length };
}

/** Two bare NATS clients of the same server: one answers what the other asks. */
async function bareNats(url: string): Promise<{ ping: () => Promise<unknown>; close: () => Promise<void> }> {
  const server = await connect({ servers: url });
  const client = await connect({ servers: url });
  server.subscribe('bench.ping', { callback: (_e, m) => void m.respond(m.data) });
  await server.flush();
  const body = new TextEncoder().encode(JSON.stringify({ event: 'system:ping', data: {} }));
  return {
    ping: () => client.request('bench.ping', body, { timeout: 5000 }),
    close: async () => {
      await Promise.all([client.close(), server.close()]);
    },
  };
}

const med = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
};

/**
 * Serial pings in alternating rounds: bare NATS, a plugin in daemon a calling b, a socket client
 * calling b through a, a socket client's local system:ping. Medians of the rounds' p50s, and CPU
 * time per call: the bench process for both bare clients, daemons a and b for a cross-daemon call.
 */
async function pingRounds(
  url: string,
  a: DaemonHandle,
  b: DaemonHandle,
  n: number,
  rounds: number,
): Promise<Record<string, unknown>> {
  const bare = await bareNats(url);
  const c = a.client;
  const remote = () => c.request('bridge:request', { event: 'system:ping', node: 'b' });
  const local = () => c.request('system:ping');
  const inDaemon = async (count: number): Promise<number[]> =>
    (
      (await c.request('benchcall:remote_pings', { n: count, node: 'b' }, { timeoutMs: 600_000 })) as {
        samples_ms: number[];
      }
    ).samples_ms;
  // Warm: JIT, the inbox subscription, connections.
  await load(Math.min(500, n), 1, bare.ping);
  await inDaemon(Math.min(500, n));
  await load(Math.min(500, n), 1, remote);
  const r: Record<string, number[]> = {
    bare: [],
    bare_cpu: [],
    in_daemon: [],
    in_daemon_cpu_a: [],
    in_daemon_cpu_b: [],
    client: [],
    client_cpu_a: [],
    client_cpu_b: [],
    local: [],
  };
  const pa = a.proc.pid!;
  const pb = b.proc.pid!;
  try {
    for (let i = 0; i < rounds; i++) {
      const u0 = process.cpuUsage();
      r.bare.push((await load(n, 1, bare.ping)).p50_us);
      const u = process.cpuUsage(u0);
      r.bare_cpu.push((u.user + u.system) / n);
      let a0 = cpuMs(pa);
      let b0 = cpuMs(pb);
      r.in_daemon.push(summarize(await inDaemon(n)).p50_us);
      r.in_daemon_cpu_a.push(((cpuMs(pa) - a0) * 1000) / n);
      r.in_daemon_cpu_b.push(((cpuMs(pb) - b0) * 1000) / n);
      a0 = cpuMs(pa);
      b0 = cpuMs(pb);
      r.client.push((await load(n, 1, remote)).p50_us);
      r.client_cpu_a.push(((cpuMs(pa) - a0) * 1000) / n);
      r.client_cpu_b.push(((cpuMs(pb) - b0) * 1000) / n);
      r.local.push((await load(n, 1, local)).p50_us);
    }
  } finally {
    await bare.close();
  }
  const m = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(med(v), 1)])) as Record<string, number>;
  const each = (k: string) => r[k]!.map((x, i) => ratio(x, r.bare[i]!));
  return {
    rounds,
    calls_per_round: n,
    bare_nats_request_reply: { p50_us: m.bare, cpu_us_per_call_both_clients: m.bare_cpu },
    from_a_plugin_in_daemon_a: {
      p50_us: m.in_daemon,
      p50_vs_bare_nats: ratio(m.in_daemon!, m.bare!),
      each_round_vs_bare: each('in_daemon'),
      cpu_us_per_call: {
        daemon_a: m.in_daemon_cpu_a,
        daemon_b: m.in_daemon_cpu_b,
        both_vs_bare_clients: ratio(m.in_daemon_cpu_a! + m.in_daemon_cpu_b!, m.bare_cpu!),
      },
      target_p50_vs_bare_max: 1.5,
    },
    from_a_socket_client: {
      p50_us: m.client,
      p50_vs_bare_nats: ratio(m.client!, m.bare!),
      each_round_vs_bare: each('client'),
      local_system_ping_p50_us: m.local,
      p50_vs_bare_nats_plus_local_ping: ratio(m.client!, m.bare! + m.local!),
      cpu_us_per_call: { daemon_a: m.client_cpu_a, daemon_b: m.client_cpu_b },
    },
    note: 'serial calls; medians of the rounds. In-daemon = a plugin in a → bridge:request → NATS → b → system:ping and back; socket client = the same behind a Unix-socket client of a; bare = two NATS clients of the same server in the bench process',
  };
}

async function concurrentPing(url: string, c: EventClient, n: number, lanes: number): Promise<Record<string, unknown>> {
  const bare = await bareNats(url);
  try {
    const b = await load(n, lanes, bare.ping);
    const d = await load(n, lanes, () => c.request('bridge:request', { event: 'system:ping', node: 'b' }));
    return {
      lanes,
      bare_nats_per_s: b.per_s,
      socket_client_cross_daemon_per_s: d.per_s,
      throughput_vs_bare_nats: ratio(d.per_s, b.per_s),
    };
  } finally {
    await bare.close();
  }
}

/** Real sandbox:exec through the bridge: a caller without a sandbox, 1..3 workers with one each. */
async function sandboxScaling(url: string, jobs: number): Promise<Record<string, unknown>> {
  const daemons: DaemonHandle[] = [];
  const notSandbox = [...OTHERS.filter((p) => p !== 'sandbox'), 'testwork'];
  const cfg = (node: string, worker: boolean) =>
    JSON.stringify({
      daemon: { plugin_dirs: [FIXTURES], disabled_plugins: worker ? notSandbox : [...notSandbox, 'sandbox'] },
      sandbox: { pool_size: SLOTS, max_concurrent: SLOTS },
      bridge: {
        url,
        node,
        prefix: 'agentdsb',
        serve: worker ? ['sandbox'] : [],
        durable: ['sandbox:exec'],
        max_concurrent: SLOTS,
        heartbeat_ms: 500,
      },
    });
  const start = (node: string, worker: boolean) =>
    startDaemon({
      home: tempHome(`agentd-bench-${node}-`),
      config: cfg(node, worker),
      env: { AGENTD_BRIDGE_NODE: node },
      readyTimeoutMs: 60_000,
    });
  try {
    const a = await start('sa', false);
    daemons.push(a);
    const out: Record<string, unknown> = {};
    for (let w = 1; w <= 3; w++) {
      const d = await start(`sw${w}`, true);
      daemons.push(d);
      const h = (await d.client.request('system:health')) as {
        plugins: Record<string, { status: string; reason: string | null }>;
      };
      if (h.plugins.sandbox?.status !== 'ok')
        return { skipped: `sandbox worker not ok: ${h.plugins.sandbox?.reason ?? 'absent'}` };
      await waitPeers(a, w, 'sandbox');
      const run = () => a.client.request('sandbox:exec', { language: 'bash', code: 'true' }, { timeoutMs: 120_000 });
      await load(Math.min(8, jobs), 4, run);
      const r = await load(jobs, 8 * SLOTS, run);
      out[`workers_${w}`] = {
        execs_per_s: r.per_s,
        p50_ms: round(r.p50_us / 1000, 1),
        p99_ms: round(r.p99_us / 1000, 1),
        execs: r.n,
      };
    }
    const per = (w: number) => (out[`workers_${w}`] as { execs_per_s: number }).execs_per_s;
    return {
      ...out,
      scaling_2_vs_1: ratio(per(2), per(1)),
      scaling_3_vs_1: ratio(per(3), per(1)),
      note: `real sandbox:exec (bash true), durable, ${SLOTS} slots and a warm pool of ${SLOTS} per worker, all workers on this machine and its one Docker engine`,
    };
  } finally {
    await stopAndClean(daemons);
  }
}

async function waitPeers(a: DaemonHandle, count: number, ns = 'testwork'): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const s = (await a.client.request<Record<string, unknown>>('bridge:status')) as {
      peers: Array<{ alive: boolean; serves: string[] }>;
    };
    if (s.peers.filter((p) => p.alive && p.serves.includes(ns)).length >= count) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`fewer than ${count} workers joined`);
}

export async function benchBridge(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const missing = natsMissing();
  if (missing) return { skipped: missing };
  const n = opts.quick ? 200 : 2000;
  const jobs = opts.quick ? 40 : 300;
  const nats = await startNats();
  const daemons: DaemonHandle[] = [];
  // No event publishing: each job would otherwise fan its events out to every daemon, and this
  // measures the work path.
  const extra = { max_concurrent: SLOTS, heartbeat_ms: 500, publish: [] };
  const nodeArgs = builtDaemonArgs((await ensureBuilt(ROOT)).entry);
  try {
    const [a, b] = await Promise.all([
      startNode({ node: 'a', url: nats.url, worker: false, extra, nodeArgs, pluginDirs: [BENCH_FIXTURES] }),
      startNode({ node: 'b', url: nats.url, worker: true, extra, nodeArgs }),
    ]);
    daemons.push(a, b);
    await waitPeers(a, 1);

    const ping = await pingRounds(nats.url, a, b, n, opts.quick ? 1 : 5);
    const concurrent = await concurrentPing(nats.url, a.client, n * 4, 16);

    const exec: Record<string, unknown> = {};
    const workers = [b];
    for (let w = 1; w <= 3; w++) {
      if (w > 1) {
        const d = await startNode({ node: `w${w}`, url: nats.url, worker: true, extra, nodeArgs });
        daemons.push(d);
        workers.push(d);
        await waitPeers(a, w);
      }
      let k = 0;
      const run = () =>
        a.client.request('testwork:exec', { tag: `bench-${w}-${k++}`, sleep_ms: EXEC_MS }, { timeoutMs: 60_000 });
      await load(Math.min(8, jobs), 4, run); // warm: consumers bound, JIT
      const r = await load(jobs, 8 * SLOTS, run);
      exec[`workers_${w}`] = {
        jobs_per_s: r.per_s,
        p50_ms: round(r.p50_us / 1000, 1),
        p99_ms: round(r.p99_us / 1000, 1),
        jobs: r.n,
        ideal_jobs_per_s: round((w * SLOTS * 1000) / EXEC_MS, 0),
      };
    }
    const per = (w: number) => (exec[`workers_${w}`] as { jobs_per_s: number }).jobs_per_s;
    await stopAndClean(daemons.splice(0));
    const sandbox =
      process.env.BENCH_BRIDGE_SANDBOX === '1'
        ? await sandboxScaling(nats.url, opts.quick ? 24 : 200)
        : { skipped: 'set BENCH_BRIDGE_SANDBOX=1 (needs Docker and the sandbox image)' };
    return {
      ping: { ...ping, concurrent },
      remote_exec: {
        ...exec,
        scaling_2_vs_1: ratio(per(2), per(1)),
        scaling_3_vs_1: ratio(per(3), per(1)),
        note: `durable jobs through JetStream; simulated exec (testwork:exec sleeping ${EXEC_MS} ms), ${SLOTS} slots per worker, ${8 * SLOTS} callers`,
      },
      remote_sandbox_exec: sandbox,
    };
  } finally {
    await stopAndClean(daemons);
    await nats.stop();
  }
}

// Run alone: `npx tsx bench/bridge.ts [--quick]`
if (import.meta.url === `file://${process.argv[1]}`) {
  benchBridge({ quick: process.argv.includes('--quick') }).then(
    (r) => {
      process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      process.exit(0);
    },
    (e) => {
      process.stderr.write(String((e as Error).stack ?? e) + '\n');
      process.exit(1);
    },
  );
}
