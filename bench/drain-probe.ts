/**
 * The completion bench's drain (and a short serial latency) alone, beside the direct SDK in the same
 * run, with knobs for finding what moves it (not part of `npm run bench`; prints one JSON line):
 * DAEMON_ROOT (another checkout, whose bundled daemon runs: compare builds), CHECK=0|1
 * (daemon.check_responses), CONNS (client connections the daemon's drain spreads its requests over),
 * ROUNDS, N (requests per drain), LAT (serial calls per side), EXTRA_YAML (merged into agentd.yaml).
 * Each drain round also gives group commits per request, the tell-tale of admission batching.
 * `npx tsx bench/drain-probe.ts`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import YAML from 'yaml';
import Anthropic from '@anthropic-ai/sdk';
import { startDaemon } from '../test/helpers/daemon-process.js';
import type { EventClient } from '../client/event-client.js';

const here = path.dirname(new URL(import.meta.url).pathname);
const root = process.env.DAEMON_ROOT ?? path.resolve(here, '..');
const check = process.env.CHECK ?? '1';
const conns = Number(process.env.CONNS ?? 1);
const rounds = Number(process.env.ROUNDS ?? 3);
const drainN = Number(process.env.N ?? 1000);
const latN = Number(process.env.LAT ?? 200);
const sessions = 50;

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

async function startApi(): Promise<{ url: string; close: () => void }> {
  const p = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'messages-api-process.ts')], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve) => {
    let out = '';
    p.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('\n')) resolve(out.trim());
    });
  });
  return { url, close: () => p.stdin!.end() };
}

const { builtDaemonArgs, ensureBuilt } = (await import(path.join(root, 'daemon', 'build.ts'))) as {
  builtDaemonArgs: (e: string) => string[];
  ensureBuilt: (r: string) => Promise<{ entry: string }>;
};
const others = fs
  .readdirSync(path.join(root, 'plugins'))
  .filter((n) => n !== 'budget' && n !== 'completion' && fs.existsSync(path.join(root, 'plugins', n, 'index.ts')));
const cfg: Record<string, Record<string, unknown>> = {
  daemon: { disabled_plugins: others, log_level: 'warn' },
  budget: { prices: { 'test-model': { input: 1, output: 2 } } },
  completion: { default_model: 'test-model', max_retries: 1, max_concurrency: 50, max_queue: 100_000 },
};
if (process.env.EXTRA_YAML) {
  const extra = YAML.parse(process.env.EXTRA_YAML) as Record<string, Record<string, unknown>>;
  for (const [k, v] of Object.entries(extra)) cfg[k] = { ...cfg[k], ...v };
}
const api = await startApi();
const d = await startDaemon({
  nodeArgs: builtDaemonArgs((await ensureBuilt(root)).entry),
  env: {
    ANTHROPIC_BASE_URL: api.url,
    ANTHROPIC_API_KEY: 'bench',
    AGENTD_DAEMON_CHECK_RESPONSES: check === '1' ? 'true' : 'false',
  },
  config: YAML.stringify(cfg),
});
const sdk = new Anthropic({ apiKey: 'bench', baseURL: api.url, maxRetries: 0 });
const clients: EventClient[] = [d.client];
for (let i = 1; i < conns; i++) clients.push(await d.connect());
const daemonCpuMs = (): number => {
  const f = fs.readFileSync(`/proc/${d.proc.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
};
try {
  for (let i = 0; i < 50; i++) {
    await sdk.messages
      .stream({ model: 'test-model', max_tokens: 64, messages: [{ role: 'user', content: `w ${i}` }] })
      .finalMessage();
    await d.client.request('completion:request', { prompt: `w ${i}`, max_tokens: 64 });
  }
  const lD: number[] = [];
  const lA: number[] = [];
  for (let i = 0; i < latN; i += 10) {
    for (let j = 0; j < 10; j++) {
      const t = performance.now();
      await sdk.messages
        .stream({ model: 'test-model', max_tokens: 64, messages: [{ role: 'user', content: `b ${i + j}` }] })
        .finalMessage();
      lD.push(performance.now() - t);
    }
    for (let j = 0; j < 10; j++) {
      const t = performance.now();
      await d.client.request('completion:request', { prompt: `b ${i + j}`, max_tokens: 64 });
      lA.push(performance.now() - t);
    }
  }
  const directDrain = async (r: number): Promise<number> => {
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: sessions }, async (_, s) => {
        const history: Anthropic.MessageParam[] = [];
        for (let k = 0; k < drainN / sessions; k++) {
          const user: Anthropic.MessageParam = { role: 'user', content: `drain ${r} ${s * 1000 + k}` };
          const msg = await sdk.messages
            .stream({ model: 'test-model', max_tokens: 64, messages: [...history, user] })
            .finalMessage();
          history.push(user, { role: 'assistant', content: msg.content });
        }
      }),
    );
    return performance.now() - t0;
  };
  const watcher = await d.connect();
  let results = 0;
  let wanted = 0;
  let resolveAll: () => void = () => undefined;
  await watcher.subscribe(['completion:result', 'completion:error'], () => {
    if (++results === wanted) resolveAll();
  });
  const commits = async (): Promise<{ commits: number; ops: number }> => {
    const h = (await d.client.request('system:health', {})) as {
      plugins: Record<string, { details?: { group_commits?: number; ops?: number } }>;
    };
    const x = h.plugins.budget?.details ?? {};
    return { commits: x.group_commits ?? 0, ops: x.ops ?? 0 };
  };
  const daemonDrain = async (
    r: number,
  ): Promise<{ ms: number; accept: number; cpu: number; cpr: number; opc: number }> => {
    const allDone = new Promise<void>((res) => (resolveAll = res));
    wanted = results + drainN;
    const g0 = await commits();
    const c0 = daemonCpuMs();
    const t1 = performance.now();
    await Promise.all(
      Array.from({ length: drainN }, (_, i) =>
        clients[i % conns]!.request(
          'completion:async',
          { prompt: `drain ${r} ${i}`, max_tokens: 64, session_id: `bench-${r}-${i % sessions}` },
          { timeoutMs: 120_000 },
        ),
      ),
    );
    const accept = performance.now() - t1;
    await allDone;
    const ms = performance.now() - t1;
    const cpu = (daemonCpuMs() - c0) / drainN;
    const g1 = await commits();
    return {
      ms,
      accept,
      cpu,
      cpr: (g1.commits - g0.commits) / drainN,
      opc: (g1.ops - g0.ops) / Math.max(1, g1.commits - g0.commits),
    };
  };
  await directDrain(-1);
  await daemonDrain(-1);
  const out: unknown[] = [];
  for (let r = 0; r < rounds; r++) {
    const dm = await directDrain(r);
    const dd = await daemonDrain(r);
    out.push({
      direct_ms: Math.round(dm),
      daemon_ms: Math.round(dd.ms),
      ratio: +(dm / dd.ms).toFixed(3),
      accept_ms: Math.round(dd.accept),
      daemon_cpu_ms_per_req: +dd.cpu.toFixed(3),
      commits_per_req: +dd.cpr.toFixed(3),
      ops_per_commit: +dd.opc.toFixed(1),
    });
  }
  await watcher.close();
  console.log(
    JSON.stringify({
      root,
      check,
      conns,
      direct_p50: +pct(lD, 50).toFixed(3),
      daemon_p50: +pct(lA, 50).toFixed(3),
      overhead_p50: +(pct(lA, 50) - pct(lD, 50)).toFixed(3),
      rounds: out,
    }),
  );
} finally {
  for (const c of clients.slice(1)) await c.close();
  await d.stop();
  api.close();
}
