/**
 * Sandbox benchmark, per language (python, node, bash, R), each sample interleaved so machine noise
 * hits all sides alike:
 *   - warm exec: a one-shot exec of a one-line print from a ready pool (its interpreter waiting);
 *   - cold `docker run --rm` of the same one-liner in the same image: the baseline;
 *   - session exec: the same code in a `sandbox:create` session, which still goes through
 *     `docker exec` (what every warm exec cost before the waiting interpreters).
 * Then python back to back (the pool refilling as it goes) and 20 concurrent python execs.
 * Target: warm python p50 ≤ 25 ms and ≤ 0.05 × the cold run's p50.
 * Needs a Docker engine and the image (scripts/dockerd.sh start; scripts/sandbox-image.sh build).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { parseConfig } from '../plugins/sandbox/config.js';
import type { Language } from '../plugins/sandbox/languages.js';
import { SandboxService } from '../plugins/sandbox/service.js';
import { percentile, ratio, round, summarize } from './stats.js';

const run = promisify(execFile);
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

const TARGET_P50_MS = 25;
const TARGET_RATIO = 0.05;

/** Each language's one-liner, as the sandbox runs it and as `docker run` runs it. */
const CASES: Record<Language, { code: string; cold: string[] }> = {
  python: { code: 'print(1)', cold: ['python3', '-c', 'print(1)'] },
  node: { code: 'console.log(1)', cold: ['node', '-e', 'console.log(1)'] },
  bash: { code: 'echo 1', cold: ['bash', '-c', 'echo 1'] },
  r: { code: 'cat("1\\n")', cold: ['Rscript', '-e', 'cat("1\\n")'] },
};

/** p50, p95 and p99 in microseconds. */
function stats(samplesMs: number[]): { p50_us: number; p95_us: number; p99_us: number; n: number } {
  const s = [...samplesMs].sort((a, b) => a - b);
  const { p50_us, p99_us, n } = summarize(samplesMs);
  return { p50_us, p95_us: round(percentile(s, 95) * 1000), p99_us, n };
}

const load = () => os.loadavg().map((x) => round(x, 2));

export async function benchSandbox(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const image = process.env.AGENTD_SANDBOX_IMAGE ?? 'agentd-sandbox:latest';
  const n = opts.quick ? 3 : 30;
  const nOther = opts.quick ? 2 : 15;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-bench-sbx-'));
  const svc = new SandboxService({
    config: parseConfig({ image, pool_size: 2, max_concurrent: 20 }),
    log: pino({ level: 'warn' }),
    home,
    emit: () => undefined,
  });
  const loadStart = load();
  await svc.start();
  const st = await svc.status();
  if (!svc.engine.up) throw new Error(`no Docker engine: ${svc.engine.state.reason}`);
  if ((st.image as { present: boolean }).present !== true)
    throw new Error(`image ${image} missing: scripts/sandbox-image.sh build`);
  try {
    const session = await svc.createSession({ session_id: 'bench' });
    const exec = (language: Language, extra: Record<string, unknown> = {}) =>
      svc.exec({ language, code: CASES[language].code, timeout_s: 60, ...extra });
    const check = (what: string, out: string) => {
      if (out.trim() !== '1') throw new Error(`${what} printed ${JSON.stringify(out)}`);
    };
    const cold = async (language: Language) =>
      (await run('docker', ['run', '--rm', '--network', 'none', image, ...CASES[language].cold])).stdout;

    const languages: Record<string, unknown> = {};
    for (const language of Object.keys(CASES) as Language[]) {
      // Warm-up: first-run costs (page cache, image layers) are not what any side is measured on.
      await svc.pool.settled();
      await exec(language);
      await exec(language, { session_id: session.session_id });
      await cold(language);
      const warm: number[] = [];
      const coldRun: number[] = [];
      const inSession: number[] = [];
      const count = language === 'python' ? n : nOther;
      for (let i = 0; i < count; i++) {
        // A ready pool and no removal in flight: the case the pool exists for, on a quiet engine.
        await svc.pool.settled();
        await svc.containers.settle();
        let t0 = process.hrtime.bigint();
        const r = await exec(language);
        warm.push(ms(t0));
        check(`warm ${language}`, r.stdout);
        t0 = process.hrtime.bigint();
        check(`docker run ${language}`, await cold(language));
        coldRun.push(ms(t0));
        t0 = process.hrtime.bigint();
        check(`session ${language}`, (await exec(language, { session_id: session.session_id })).stdout);
        inSession.push(ms(t0));
      }
      const w = stats(warm);
      const c = stats(coldRun);
      languages[language] = {
        warm_exec: w,
        cold_docker_run: c,
        session_exec: stats(inSession),
        warm_vs_cold_p50: ratio(w.p50_us, c.p50_us),
      };
    }

    // Back to back: each exec takes a container and the pool refills behind it.
    await svc.pool.settled();
    const b2b: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      await exec('python');
      b2b.push(ms(t0));
    }

    // 20 at once (more than the pool holds: most start a container).
    await svc.pool.settled();
    await svc.containers.settle();
    const each: number[] = [];
    const t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        const t = process.hrtime.bigint();
        const r = await exec('python');
        each.push(ms(t));
        if (r.exit_code !== 0) throw new Error('concurrent exec failed');
      }),
    );
    const wall = ms(t0);

    const py = languages.python as {
      warm_exec: { p50_us: number };
      cold_docker_run: { p50_us: number };
      warm_vs_cold_p50: number;
    };
    return {
      image,
      engine: svc.engine.state.version,
      load_avg_start: loadStart,
      load_avg_end: load(),
      languages,
      warm_python_p50_ms: round(py.warm_exec.p50_us / 1000, 2),
      cold_python_p50_ms: round(py.cold_docker_run.p50_us / 1000, 2),
      warm_vs_cold_p50: py.warm_vs_cold_p50,
      target: { p50_ms: TARGET_P50_MS, ratio: TARGET_RATIO },
      meets_target: py.warm_exec.p50_us <= TARGET_P50_MS * 1000 && py.warm_vs_cold_p50 <= TARGET_RATIO,
      back_to_back_exec: stats(b2b),
      concurrent_20: { wall_ms: round(wall), execs_per_s: round(20 / (wall / 1000)), ...stats(each) },
    };
  } finally {
    await svc.stop(Date.now() + 20_000);
    fs.rmSync(home, { recursive: true, force: true });
  }
}

// Standalone: `npx tsx bench/sandbox.ts [--quick]`
if (import.meta.url === `file://${process.argv[1]}`) {
  benchSandbox({ quick: process.argv.includes('--quick') }).then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
