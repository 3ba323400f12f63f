/**
 * The CLI as an operator runs it: `./daemon-control.ts status|health|emit` against a running daemon,
 * and `start` on a fresh home, wall time and CPU time (user + system, what the machine's load does
 * not stretch), each the median of several runs. Beside them in the same run: a bare `node -e 0`
 * (the floor of any Node command) and the same commands from the sources under the TypeScript loader
 * (how the CLI ran before it was prebuilt).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../test/helpers/daemon-process.js';
import { round } from './stats.js';

const CLI = path.join(ROOT, 'daemon-control.ts');
const TSX = path.join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs');

interface Timed {
  wall_ms: number;
  cpu_ms: number;
  code: number;
}

/** Run a command to its end: wall time from spawn, CPU time as the shell's `times` reports its child. */
function timed(argv: string[], env: NodeJS.ProcessEnv): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn('sh', ['-c', '"$@" >/dev/null 2>&1; c=$?; times >&2; exit $c', 'sh', ...argv], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.once('error', reject);
    p.once('exit', (code) => {
      const wall = performance.now() - t0;
      // Second line: the children's user and system time, e.g. "0m0.071s 0m0.012s".
      const m = err
        .trim()
        .split('\n')[1]
        ?.match(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/);
      const cpu = m ? (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000 : NaN;
      resolve({ wall_ms: wall, cpu_ms: cpu, code: code ?? -1 });
    });
  });
}

const med = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return round(s[Math.floor((s.length - 1) / 2)]!, 0);
};

async function many(
  argv: string[],
  env: NodeJS.ProcessEnv,
  runs: number,
): Promise<{ wall_ms: number; cpu_ms: number; wall_each_ms: number[] }> {
  const xs: Timed[] = [];
  for (let i = 0; i < runs; i++) {
    const t = await timed(argv, env);
    if (t.code !== 0) throw new Error(`${argv.join(' ')} exited ${t.code}`);
    xs.push(t);
  }
  return {
    wall_ms: med(xs.map((x) => x.wall_ms)),
    cpu_ms: med(xs.map((x) => x.cpu_ms)),
    wall_each_ms: xs.map((x) => round(x.wall_ms, 0)),
  };
}

export async function benchCli(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const runs = opts.quick ? 3 : 9;
  const base = { ...process.env };
  delete base.NODE_OPTIONS;
  delete base.AGENTD_FROM_SOURCE;
  // Build once before timing (the daemon's bundle and the CLI's): a command after an edit pays that once.
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-bench-cli-'));
  const env: NodeJS.ProcessEnv = { ...base, AGENTD_HOME: home, AGENTD_SANDBOX_POOL_SIZE: '0' };
  delete env.AGENTD_SOCKET;
  delete env.AGENTD_CONFIG;
  await timed([CLI, 'build'], env);
  const starts: Timed[] = [];
  try {
    // start on a fresh home each time (databases created), then stop.
    for (let i = 0; i < runs; i++) {
      const h = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-bench-cli-start-'));
      const e = { ...env, AGENTD_HOME: h };
      try {
        const t = await timed([CLI, 'start'], e);
        if (t.code !== 0) throw new Error(`start exited ${t.code}`);
        starts.push(t);
      } finally {
        await timed([CLI, 'stop'], e);
        fs.rmSync(h, { recursive: true, force: true });
      }
    }
    const s = await timed([CLI, 'start'], env);
    if (s.code !== 0) throw new Error(`start exited ${s.code}`);
    const node = await many(['node', '-e', '0'], env, runs);
    const out: Record<string, unknown> = {};
    for (const cmd of [['status'], ['health'], ['emit', 'system:ping']]) {
      const prebuilt = await many([CLI, ...cmd], env, runs);
      const sources = await many(['node', '--import', TSX, '--no-warnings', CLI, ...cmd], env, opts.quick ? 2 : 5);
      out[cmd[0]!] = {
        prebuilt,
        from_sources_tsx: { wall_ms: sources.wall_ms, cpu_ms: sources.cpu_ms },
        over_bare_node_wall_ms: round(prebuilt.wall_ms - node.wall_ms, 0),
        target_wall_ms_max: 150,
      };
    }
    return {
      runs,
      bare_node: node,
      ...out,
      start: {
        wall_ms: med(starts.map((x) => x.wall_ms)),
        cpu_ms: med(starts.map((x) => x.cpu_ms)),
        wall_each_ms: starts.map((x) => round(x.wall_ms, 0)),
        target_wall_ms_max: 500,
      },
      load_avg: os.loadavg().map((x) => round(x, 1)),
    };
  } finally {
    await timed([CLI, 'stop'], env);
    fs.rmSync(home, { recursive: true, force: true });
  }
}

// Run directly: `npx tsx bench/cli.ts [--quick]`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchCli({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
}
