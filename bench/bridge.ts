/**
 * Bridge benchmarks, each beside its baseline in the same run:
 * - cross-daemon `system:ping` (client → daemon a → NATS → daemon b and back, via bridge:request)
 *   beside a direct NATS request/reply between two bare clients, and beside a local system:ping;
 * - remote exec throughput through JetStream with 1, 2 and 3 workers. The exec is simulated
 *   (`testwork:exec` sleeping `EXEC_MS`, `SLOTS` jobs at once per worker) so the figure measures the
 *   bridge's scaling, not Docker's. With BENCH_BRIDGE_SANDBOX=1 and a Docker engine, the same with
 *   real `sandbox:exec` (`bash -c true`) on 1, 2 and 3 sandbox workers — on one machine they share
 *   its cores and its Docker engine, so expect little scaling there.
 */
import { connect } from '@nats-io/transport-node';
import type { EventClient } from '../client/event-client.js';
import type { DaemonHandle } from '../test/helpers/daemon-process.js';
import { startDaemon, tempHome } from '../test/helpers/daemon-process.js';
import { natsMissing, startNats } from '../test/bridge/nats.js';
import { FIXTURES, OTHERS, startNode, stopAndClean } from '../test/bridge/fleet.js';
import { ratio, round, summarize } from './stats.js';

const EXEC_MS = 100;
const SLOTS = 4;

/** `lanes` callers each awaiting one call at a time, `n` calls in all. */
async function load(n: number, lanes: number, call: () => Promise<unknown>): Promise<{ per_s: number; p50_us: number; p99_us: number; n: number }> {
  const samples: number[] = [];
  let started = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: lanes }, async () => {
    while (started < n) {
      started++;
      const s = performance.now();
      await call();
      samples.push(performance.now() - s);
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  const { p50_us, p99_us } = summarize(samples);
  return { per_s: round(samples.length / secs, 0), p50_us, p99_us, n: samples.length };
}

async function bareNats(url: string, n: number, lanes: number) {
  const server = await connect({ servers: url });
  const client = await connect({ servers: url });
  server.subscribe('bench.ping', { callback: (_e, m) => void m.respond(m.data) });
  await server.flush();
  const body = new TextEncoder().encode(JSON.stringify({ event: 'system:ping', data: {} }));
  const ping = () => client.request('bench.ping', body, { timeout: 5000 });
  await load(Math.min(200, n), 1, ping);
  const serial = await load(n, 1, ping);
  const concurrent = await load(n * 4, lanes, ping);
  await client.close();
  await server.close();
  return { serial, concurrent };
}

async function daemonPing(c: EventClient, n: number, lanes: number, remote: boolean) {
  const ping = remote ? () => c.request('bridge:request', { event: 'system:ping', node: 'b' }) : () => c.request('system:ping');
  await load(Math.min(200, n), 1, ping);
  const serial = await load(n, 1, ping);
  const concurrent = await load(n * 4, lanes, ping);
  return { serial, concurrent };
}

/** Real sandbox:exec through the bridge: a caller without a sandbox, 1..3 workers with one each. */
async function sandboxScaling(url: string, jobs: number): Promise<Record<string, unknown>> {
  const daemons: DaemonHandle[] = [];
  const notSandbox = [...OTHERS.filter((p) => p !== 'sandbox'), 'testwork'];
  const cfg = (node: string, worker: boolean) => JSON.stringify({
    daemon: { plugin_dirs: [FIXTURES], disabled_plugins: worker ? notSandbox : [...notSandbox, 'sandbox'] },
    sandbox: { pool_size: SLOTS, max_concurrent: SLOTS },
    bridge: { url, node, prefix: 'agentdsb', serve: worker ? ['sandbox'] : [], durable: ['sandbox:exec'], max_concurrent: SLOTS, heartbeat_ms: 500 },
  });
  const start = (node: string, worker: boolean) => startDaemon({ home: tempHome(`agentd-bench-${node}-`), config: cfg(node, worker), env: { AGENTD_BRIDGE_NODE: node }, readyTimeoutMs: 60_000 });
  try {
    const a = await start('sa', false);
    daemons.push(a);
    const out: Record<string, unknown> = {};
    for (let w = 1; w <= 3; w++) {
      const d = await start(`sw${w}`, true);
      daemons.push(d);
      const h = (await d.client.request('system:health')) as { plugins: Record<string, { status: string; reason: string | null }> };
      if (h.plugins.sandbox?.status !== 'ok') return { skipped: `sandbox worker not ok: ${h.plugins.sandbox?.reason ?? 'absent'}` };
      await waitPeers(a, w, 'sandbox');
      const run = () => a.client.request('sandbox:exec', { language: 'bash', code: 'true' }, { timeoutMs: 120_000 });
      await load(Math.min(8, jobs), 4, run);
      const r = await load(jobs, 8 * SLOTS, run);
      out[`workers_${w}`] = { execs_per_s: r.per_s, p50_ms: round(r.p50_us / 1000, 1), p99_ms: round(r.p99_us / 1000, 1), execs: r.n };
    }
    const per = (w: number) => (out[`workers_${w}`] as { execs_per_s: number }).execs_per_s;
    return { ...out, scaling_2_vs_1: ratio(per(2), per(1)), scaling_3_vs_1: ratio(per(3), per(1)), note: `real sandbox:exec (bash true), durable, ${SLOTS} slots and a warm pool of ${SLOTS} per worker, all workers on this machine and its one Docker engine` };
  } finally {
    await stopAndClean(daemons);
  }
}

async function waitPeers(a: DaemonHandle, count: number, ns = 'testwork'): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const s = (await a.client.request<Record<string, unknown>>('bridge:status')) as { peers: Array<{ alive: boolean; serves: string[] }> };
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
  try {
    const [a, b] = await Promise.all([
      startNode({ node: 'a', url: nats.url, worker: false, extra }),
      startNode({ node: 'b', url: nats.url, worker: true, extra }),
    ]);
    daemons.push(a, b);
    await waitPeers(a, 1);

    const bare = await bareNats(nats.url, n, 16);
    const local = await daemonPing(a.client, n, 16, false);
    const bridged = await daemonPing(a.client, n, 16, true);

    const exec: Record<string, unknown> = {};
    const workers = [b];
    for (let w = 1; w <= 3; w++) {
      if (w > 1) {
        const d = await startNode({ node: `w${w}`, url: nats.url, worker: true, extra });
        daemons.push(d);
        workers.push(d);
        await waitPeers(a, w);
      }
      let k = 0;
      const run = () => a.client.request('testwork:exec', { tag: `bench-${w}-${k++}`, sleep_ms: EXEC_MS }, { timeoutMs: 60_000 });
      await load(Math.min(8, jobs), 4, run); // warm: consumers bound, JIT
      const r = await load(jobs, 8 * SLOTS, run);
      exec[`workers_${w}`] = { jobs_per_s: r.per_s, p50_ms: round(r.p50_us / 1000, 1), p99_ms: round(r.p99_us / 1000, 1), jobs: r.n, ideal_jobs_per_s: round((w * SLOTS * 1000) / EXEC_MS, 0) };
    }
    const per = (w: number) => (exec[`workers_${w}`] as { jobs_per_s: number }).jobs_per_s;
    await stopAndClean(daemons.splice(0));
    const sandbox = process.env.BENCH_BRIDGE_SANDBOX === '1' ? await sandboxScaling(nats.url, opts.quick ? 24 : 200) : { skipped: 'set BENCH_BRIDGE_SANDBOX=1 (needs Docker and the sandbox image)' };
    return {
      ping: {
        bare_nats_request_reply: bare,
        local_socket_system_ping: local,
        cross_daemon_system_ping: bridged,
        overhead_p50_vs_bare_nats: ratio(bridged.serial.p50_us, bare.serial.p50_us),
        throughput_vs_bare_nats: ratio(bridged.concurrent.per_s, bare.concurrent.per_s),
        note: 'cross-daemon = client → a (socket) → bridge:request → NATS → b → system:ping and back; bare = two NATS clients, same server, same run',
      },
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
  benchBridge({ quick: process.argv.includes('--quick') }).then((r) => {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    process.exit(0);
  }, (e) => {
    process.stderr.write(String((e as Error).stack ?? e) + '\n');
    process.exit(1);
  });
}
