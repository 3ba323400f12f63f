/**
 * Sandbox benchmark: warm-pool `print(1)` latency beside a cold `docker run --rm` of the same image,
 * interleaved in the same run so machine noise hits both alike (target: warm p50 ≤ 0.3 × cold p50);
 * back-to-back execs (the pool refilling as it goes); and 20 concurrent execs.
 * Needs a Docker engine and the image (scripts/dockerd.sh start; scripts/sandbox-image.sh build).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { parseConfig } from '../plugins/sandbox/config.js';
import { SandboxService } from '../plugins/sandbox/service.js';
import { ratio, round, summarize } from './stats.js';

const run = promisify(execFile);
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

export async function benchSandbox(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const image = process.env.AGENTD_SANDBOX_IMAGE ?? 'agentd-sandbox:latest';
  const n = opts.quick ? 5 : 30;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-bench-sbx-'));
  const svc = new SandboxService({
    config: parseConfig({ image, pool_size: 2, max_concurrent: 20 }),
    log: pino({ level: 'warn' }),
    home,
    emit: () => undefined,
  });
  await svc.start();
  const st = await svc.status();
  if (!svc.engine.up) throw new Error(`no Docker engine: ${svc.engine.state.reason}`);
  if ((st.image as { present: boolean }).present !== true) throw new Error(`image ${image} missing: scripts/sandbox-image.sh build`);
  try {
    const exec = () => svc.exec({ language: 'python', code: 'print(1)', timeout_s: 60 });
    // Warm-up: first-run costs (page cache, image layers) are not what either side is measured on.
    await svc.pool.settled();
    await exec();
    await run('docker', ['run', '--rm', '--network', 'none', image, 'python3', '-c', 'print(1)']);

    const warm: number[] = [];
    const cold: number[] = [];
    for (let i = 0; i < n; i++) {
      // A ready pool and no removal in flight: the case the pool exists for, on a quiet engine.
      await svc.pool.settled();
      await svc.containers.settle();
      let t0 = process.hrtime.bigint();
      const r = await exec();
      warm.push(ms(t0));
      if (r.stdout !== '1\n') throw new Error(`warm exec printed ${JSON.stringify(r.stdout)}`);
      t0 = process.hrtime.bigint();
      const { stdout } = await run('docker', ['run', '--rm', '--network', 'none', image, 'python3', '-c', 'print(1)']);
      cold.push(ms(t0));
      if (stdout !== '1\n') throw new Error(`docker run printed ${JSON.stringify(stdout)}`);
    }

    // Back to back: the pool (2) drains and refills in the background while execs keep coming.
    await svc.pool.settled();
    const b2b: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      await exec();
      b2b.push(ms(t0));
    }

    // 20 at once.
    await svc.pool.settled();
    const each: number[] = [];
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: 20 }, async () => {
      const t = process.hrtime.bigint();
      const r = await exec();
      each.push(ms(t));
      if (r.exit_code !== 0) throw new Error('concurrent exec failed');
    }));
    const wall = ms(t0);

    const w = summarize(warm);
    const c = summarize(cold);
    return {
      image,
      engine: svc.engine.state.version,
      warm_exec: w,
      cold_docker_run: c,
      warm_vs_cold_p50: ratio(w.p50_us, c.p50_us),
      target_ratio: 0.3,
      meets_target: w.p50_us <= 0.3 * c.p50_us,
      back_to_back_exec: summarize(b2b),
      concurrent_20: { wall_ms: round(wall), execs_per_s: round(20 / (wall / 1000)), ...summarize(each) },
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
