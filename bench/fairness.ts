/**
 * Fairness between clients: one client pipelines expensive requests flat out while another sends
 * `system:ping` one at a time. Measured for this build and, in the same run, for the unfair
 * baseline: the kernel as it was before admission rounds (the commit UNFAIR_BASELINE, unpacked with
 * `git archive` into a temporary directory and built the same way), so the figures sit side by side.
 *
 * Mixes (test/helpers/fairness-load.ts): `kg` is the (kg:stats on a 40k-node graph for a
 * quarter of the requests); `scan` makes every fourth request a kg:find that scans the whole graph,
 * each one holding the loop however it is admitted (what admission bounds is the wait to about one of
 * them); `deep` pipelines agent:spawn frames nesting 20,000 deep. Targets: ping p50 ≤ 5 ms and
 * p99 ≤ 50 ms (kg and deep), the pipeliner's throughput at least 90% of the baseline's.
 */
import { execSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { builtDaemonArgs, ensureBuilt } from '../daemon/build.js';
import { ROOT, startDaemon } from '../test/helpers/daemon-process.js';
import { loadGraph, runLoad, type LoadResult, type Mix } from '../test/helpers/fairness-load.js';
import { REAL_PLUGINS } from '../test/kernel/kit.js';
import { ratio } from './stats.js';

/** The last commit of main before admission rounds, byte budgets and counted kg:stats. */
export const UNFAIR_BASELINE = 'cdcfbd36916085bb52136d3b2663529d25d133cd';
const NODES = 40_000;

interface Build {
  name: string;
  nodeArgs: string[];
}

/** The baseline's tree, unpacked once per commit and built with its own build script. */
async function baselineBuild(ref: string): Promise<Build | { skipped: string }> {
  // One per checkout as well as per commit: its node_modules is the checkout's, whose native modules
  // are built for the Node that checkout runs (another checkout on the machine may run another).
  const dir = path.join(
    os.tmpdir(),
    `agentd-baseline-${ref.slice(0, 12)}-${createHash('sha256').update(ROOT).digest('hex').slice(0, 8)}`,
  );
  try {
    if (!fs.existsSync(path.join(dir, 'package.json'))) {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
      execSync(`git -C ${JSON.stringify(ROOT)} archive ${ref} | tar -x -C ${JSON.stringify(dir)}`, {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    }
    const build = (await import(path.join(dir, 'daemon', 'build.ts'))) as typeof import('../daemon/build.js');
    const { entry } = await build.ensureBuilt(dir);
    return { name: `baseline ${ref.slice(0, 12)}`, nodeArgs: build.builtDaemonArgs(entry) };
  } catch (e) {
    return { skipped: `baseline ${ref} not available: ${(e as Error).message.split('\n')[0]}` };
  }
}

const configFor = (mix: Mix): string => {
  const keep = mix === 'deep' ? ['agent', 'completion', 'budget'] : ['kg'];
  return `daemon:\n  disabled_plugins: ${JSON.stringify(REAL_PLUGINS.filter((p) => !keep.includes(p)))}\n`;
};

async function measure(
  b: Build,
  mix: Mix,
  seconds: number,
): Promise<{ alone: LoadResult['ping']; loaded: LoadResult }> {
  const d = await startDaemon({ config: configFor(mix), nodeArgs: b.nodeArgs, readyTimeoutMs: 60_000 });
  try {
    if (mix !== 'deep') await loadGraph(d.socketPath, NODES);
    const alone = (await runLoad(d.socketPath, { mix, nodes: NODES, seconds: Math.min(seconds, 3), hog: false })).ping;
    const loaded = await runLoad(d.socketPath, {
      mix,
      nodes: NODES,
      seconds,
      window: mix === 'deep' ? 64 : 256,
      daemonPid: d.proc.pid,
    });
    return { alone, loaded };
  } finally {
    await d.stop();
  }
}

export async function benchFairness(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const seconds = opts.quick ? 2 : 10;
  const ref = process.env.AGENTD_BENCH_UNFAIR_REF ?? UNFAIR_BASELINE;
  const current: Build = { name: 'agentd', nodeArgs: builtDaemonArgs((await ensureBuilt(ROOT)).entry) };
  const baseline = await baselineBuild(ref);
  const out: Record<string, unknown> = { baseline_ref: ref, graph_nodes: NODES, seconds_per_run: seconds };
  for (const mix of ['kg', 'scan', 'deep'] as const) {
    const a = await measure(current, mix, seconds);
    const base = 'skipped' in baseline ? null : await measure(baseline, mix, seconds);
    const row: Record<string, unknown> = {
      agentd: {
        ping_alone: a.alone,
        ping_with_pipeliner: a.loaded.ping,
        loop_cpu_per_ping: a.loaded.loop_cpu,
        pings_overtaken_by: a.loaded.overtaken,
        pipeliner: a.loaded.hog,
      },
      baseline: base
        ? {
            ping_alone: base.alone,
            ping_with_pipeliner: base.loaded.ping,
            loop_cpu_per_ping: base.loaded.loop_cpu,
            pings_overtaken_by: base.loaded.overtaken,
            pipeliner: base.loaded.hog,
          }
        : baseline,
    };
    if (base) row.pipeliner_throughput_ratio = ratio(a.loaded.hog.req_per_s, Math.max(1, base.loaded.hog.req_per_s));
    if (mix !== 'scan') {
      row.targets = {
        ping_p50_le_5ms: a.loaded.ping.p50_ms <= 5,
        ping_p99_le_50ms: a.loaded.ping.p99_ms <= 50,
        ...(base ? { pipeliner_ge_90pct_of_baseline: a.loaded.hog.req_per_s >= 0.9 * base.loaded.hog.req_per_s } : {}),
      };
    }
    out[mix] = row;
  }
  return out;
}

// Run directly: `npx tsx bench/fairness.ts [--quick]`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchFairness({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
}
