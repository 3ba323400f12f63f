/**
 * The workflow scheduler's own cost, each figure beside the same events sent from a client in a bare
 * loop, in the same run (rounds alternate so both see the same machine):
 *  - per step: a chain of system:ping steps (each needs the one before) beside the same pings sent
 *    one after another by a client. The workflow side pays everything a step costs: the journal's
 *    two transitions, its events, templates, the start and the outcome written durably. Rounds
 *    alternate which side goes first; besides the ratio of the medians, the median of each round's
 *    own ratio (the two sides of a round saw the same machine). The marginal cost of a step, from a
 *    short and a long chain in the same round, leaves out what a run costs once (validating the
 *    definition, the outcome's disk sync, the final answer). And the CPU time each side costs per
 *    event, summed over the processes that do its work (the daemon for a step; the daemon and the
 *    client for a ping): what a loaded machine's waiting does not change.
 *  - a foreach of 1,000 items (concurrency 50) beside 1,000 pings from 50 concurrent client workers.
 *  - 100 runs at once (five chained steps each) beside 100 concurrent five-ping client loops.
 *  - the daemon's resident memory before and after each batch of 100 runs (six batches): bounded when
 *    later batches add little.
 * Runs the bundled build (what `daemon-control start` runs). Alone: `npx tsx bench/workflow.ts [--quick]`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import YAML from 'yaml';
import { builtDaemonArgs, ensureBuilt } from '../daemon/build.js';
import type { EventClient } from '../client/event-client.js';
import { startDaemon } from '../test/helpers/daemon-process.js';
import { ratio, round } from './stats.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
/** CPU time a process has used, user and system, in ms (from /proc: clock ticks of 10 ms, summed over many events). */
const cpuMs = (pid: number): number => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};
const selfCpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const rssMb = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? round(Number(m[1]) / 1024) : NaN;
};

const chain = (name: string, n: number) => ({
  name,
  steps: Array.from({ length: n }, (_, i) => ({
    id: `s${i}`,
    event: 'system:ping',
    ...(i ? { needs: [`s${i - 1}`] } : {}),
  })),
});

async function timeRun(
  c: EventClient,
  definition: Record<string, unknown>,
  inputs: Record<string, unknown> = {},
): Promise<number> {
  const t0 = performance.now();
  const r = await c.request('workflow:start', { definition, inputs, wait: true }, { timeoutMs: 600_000 });
  if (r.status !== 'succeeded') throw new Error(`bench run ended ${String(r.status)}: ${JSON.stringify(r.error)}`);
  return performance.now() - t0;
}

async function bareLoop(c: EventClient, n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await c.request('system:ping', {});
  return performance.now() - t0;
}

async function bareWorkers(c: EventClient, n: number, workers: number): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < n) {
        next++;
        await c.request('system:ping', {});
      }
    }),
  );
  return performance.now() - t0;
}

export async function benchWorkflow(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const steps = opts.quick ? 50 : 200;
  const short = steps / 4;
  const rounds = opts.quick ? 5 : 15;
  const items = opts.quick ? 200 : 1000;
  const config = YAML.stringify({
    daemon: { log_level: 'warn', disabled_plugins: ['sandbox', 'bridge', 'completion', 'agent', 'kg'] },
    workflow: { watch: false, default_concurrency: 50, max_running_tasks: 1024 },
  });
  // As in production: the test helper turns on every answer's schema check, which is for tests.
  const d = await startDaemon({
    config,
    env: { AGENTD_DAEMON_CHECK_RESPONSES: 'false' },
    readyTimeoutMs: 90_000,
    nodeArgs: builtDaemonArgs((await ensureBuilt(root)).entry),
  });
  const c = d.client;
  try {
    // Warm both sides (the discover cache, the journal's pages, and the JIT: V8 went on optimizing
    // the daemon's functions on its background threads for some 3,000 steps, taking CPU from the
    // runs measured). Both sides get the same number of events.
    for (let i = 0; i < (opts.quick ? 4 : 20); i++) {
      await timeRun(c, chain('warm', steps));
      await bareLoop(c, steps);
    }

    const wf: number[] = [];
    const bare: number[] = [];
    const marginal: number[] = [];
    const wfCpu: number[] = [];
    const bareCpu: number[] = [];
    const pid = d.proc.pid!;
    const onWf = async (): Promise<number> => {
      const c0 = cpuMs(pid);
      const t = await timeRun(c, chain('steps', steps));
      wfCpu.push((cpuMs(pid) - c0) / steps);
      return t;
    };
    const onBare = async (): Promise<number> => {
      const c0 = cpuMs(pid) + selfCpuMs();
      const t = await bareLoop(c, steps);
      bareCpu.push((cpuMs(pid) + selfCpuMs() - c0) / steps);
      return t;
    };
    for (let r = 0; r < rounds; r++) {
      let long = 0;
      let b = 0;
      if (r % 2 === 0) {
        long = await onWf();
        b = await onBare();
      } else {
        b = await onBare();
        long = await onWf();
      }
      const brief = await timeRun(c, chain('short', short));
      wf.push(long / steps);
      bare.push(b / steps);
      marginal.push((long - brief) / (steps - short));
    }
    const perStep = median(wf);
    const perBare = median(bare);

    const fe = {
      name: 'fe',
      inputs: { l: { type: 'array' } },
      steps: [{ id: 'each', event: 'system:ping', foreach: '{{ inputs.l }}', concurrency: 50 }],
    };
    const list = Array.from({ length: items }, (_, i) => i);
    const feMs: number[] = [];
    const feBare: number[] = [];
    for (let r = 0; r < Math.max(1, Math.floor(rounds / 2)); r++) {
      feMs.push(await timeRun(c, fe, { l: list }));
      feBare.push(await bareWorkers(c, items, 50));
    }

    const rssStart = rssMb(d.proc.pid!);
    const batch = async (): Promise<{ wf: number; bare: number }> => {
      const t0 = performance.now();
      await Promise.all(Array.from({ length: 100 }, () => timeRun(c, chain('many', 5))));
      const wfMs = performance.now() - t0;
      const t1 = performance.now();
      await Promise.all(Array.from({ length: 100 }, () => bareLoop(c, 5)));
      return { wf: wfMs, bare: performance.now() - t1 };
    };
    const b1 = await batch();
    const rss = [rssMb(d.proc.pid!)];
    let b2 = b1;
    // More batches: memory that only grows while the router's event history fills and then stays is bounded.
    for (let i = 1; i < (opts.quick ? 2 : 6); i++) {
      b2 = await batch();
      rss.push(rssMb(d.proc.pid!));
    }

    return {
      per_step: {
        steps,
        rounds,
        workflow_ms_per_step: round(perStep, 3),
        bare_loop_ms_per_event: round(perBare, 3),
        ratio: ratio(perStep, perBare),
        ratio_median_of_rounds: round(median(wf.map((x, i) => x / bare[i]!)), 3),
        marginal_ms_per_step: round(median(marginal), 3),
        marginal_ratio: ratio(median(marginal), perBare),
        // Means over all rounds: a round's 200 events are only a few 10 ms ticks of CPU time.
        cpu_ms_per_step: round(mean(wfCpu), 3),
        cpu_ms_per_ping: round(mean(bareCpu), 3),
        cpu_ratio: ratio(mean(wfCpu), mean(bareCpu)),
        target: '≤ 1 ms per step and ≤ 1.3× the bare loop',
        all_rounds_workflow_ms: wf.map((x) => round(x, 3)),
        all_rounds_bare_ms: bare.map((x) => round(x, 3)),
      },
      foreach: {
        items,
        concurrency: 50,
        workflow_ms: round(median(feMs)),
        bare_workers_ms: round(median(feBare)),
        ratio: ratio(median(feMs), median(feBare)),
        workflow_ms_per_item: round(median(feMs) / items, 3),
      },
      runs_at_once: {
        runs: 100,
        steps_each: 5,
        workflow_ms: round(b1.wf),
        bare_ms: round(b1.bare),
        ratio: ratio(b1.wf, b1.bare),
        last_batch_workflow_ms: round(b2.wf),
        last_batch_bare_ms: round(b2.bare),
      },
      memory_mb: {
        before: rssStart,
        after_each_100_runs: rss,
        growth_last_100: round(rss[rss.length - 1]! - rss[rss.length - 2]!),
      },
    };
  } finally {
    await d.stop();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await benchWorkflow({ quick: process.argv.includes('--quick') });
  process.stdout.write(JSON.stringify(r, null, 2) + '\n');
}
