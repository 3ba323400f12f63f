/**
 * Completion queue overhead, against the instant local Messages API (in a process of its own, as the
 * real API is remote), with the SDK called directly against the same server in the same run as the
 * baseline:
 *  - latency: p50 of one completion:request at a time vs one SDK streaming call at a time, and vs
 *    the same request through a bare SDK proxy process (the daemon's hops without its work); rounds
 *    interleaved so all three see the same machine noise;
 *  - drain: 1,000 requests over 50 sessions queued at once, until the last completion:result, vs 50
 *    direct workers (one per session, FIFO, each sending its session's conversation so far, as the
 *    daemon does for a session_id) at the daemon's concurrency of 50; five alternating rounds, the
 *    median ratio reported;
 *  - the OpenAI-compatible path: p50 of one completion:request to a `completion.providers` model vs
 *    one streaming chat completions call with the bare `openai` SDK against the same local server (in
 *    its own process), interleaved with the rounds above.
 * Run alone: `npx tsx bench/completion.ts [--quick]`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { ChatAssembler, toChatRequest } from '../plugins/completion/providers/openai-convert.js';
import { toolDefinitions } from '../plugins/agent/tools.js';
import { startDaemon } from '../test/helpers/daemon-process.js';
import { spawn } from 'node:child_process';
import { testConfig } from '../test/completion/helpers.js';
import { builtDaemonArgs, ensureBuilt } from '../daemon/build.js';
import { EventClient } from '../client/event-client.js';
import os from 'node:os';

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;

/**
 * What one durable (synchronous=FULL) commit costs on the disk the daemon uses, measured now: a
 * completion:request waits for two of them (the reservation before the call, the settlement after),
 * so on a busy disk they, not the queue, dominate the overhead.
 */
function fsyncCommitMs(dir: string, n: number): number {
  const file = path.join(dir, `fsync-probe-${process.pid}.db`);
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE t (v INTEGER)');
    const ins = db.prepare('INSERT INTO t VALUES (?)');
    const xs: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      ins.run(i);
      xs.push(performance.now() - t);
    }
    return pct(xs, 50);
  } finally {
    db.close();
    for (const s of ['', '-wal', '-shm']) fs.rmSync(file + s, { force: true });
  }
}

/**
 * A helper process of this bench (a script beside it, under tsx): resolves with the first line it
 * prints once it is ready; `close` ends its stdin, which is how each of them knows to stop.
 */
async function startHelper(script: string, args: string[]): Promise<{ line: string; close: () => Promise<void> }> {
  const p = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(path.dirname(new URL(import.meta.url).pathname), script), ...args],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    p.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('\n')) resolve(out.trim());
    });
    p.once('exit', (code) => reject(new Error(`${script} exited (${code})`)));
  });
  return {
    line,
    close: () =>
      new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.stdin!.end();
        setTimeout(() => p.kill('SIGKILL'), 2000).unref();
      }),
  };
}

/** The Messages API server in its own process (see messages-api-process.ts). */
async function startApiProcess(): Promise<{ url: string; close: () => Promise<void> }> {
  const h = await startHelper('messages-api-process.ts', []);
  return { url: h.line, close: h.close };
}

/**
 * The conversion at the OpenAI-compatible edge, per call, for an agent's turn 10 steps in (21 messages
 * of tool calls and results, the five agent tools): the request converted to chat completions and an
 * answer of 31 chunks assembled, beside the JSON serialisation every call makes of the same request
 * anyway (the SDK sends it), in µs.
 */
function conversionMicros(n: number): { convert_us: number; assemble_us: number; json_stringify_us: number } {
  const messages: Array<{ role: 'user' | 'assistant'; content: string | Array<Record<string, unknown>> }> = [];
  for (let i = 0; i < 10; i++) {
    messages.push({
      role: 'user',
      content:
        i === 0
          ? 'Check the hypothesis by computation.'
          : [
              {
                type: 'tool_result',
                tool_use_id: `call_${i}`,
                content: '{"exit_code":0,"stdout":"25\\n","stderr":""}',
              },
            ],
    });
    messages.push({
      role: 'assistant',
      content: [
        { type: 'text', text: 'Running some code to check it.' },
        {
          type: 'tool_use',
          id: `call_${i + 1}`,
          name: 'sandbox_exec',
          input: { language: 'python', code: 'print(25)' },
        },
      ],
    });
  }
  messages.push({
    role: 'user',
    content: [{ type: 'tool_result', tool_use_id: 'call_11', content: '{"stdout":"25"}' }],
  });
  const req = {
    model: 'm',
    max_tokens: 1024,
    system: 'You are a careful scientist.',
    messages,
    tools: toolDefinitions(['sandbox_exec', 'kg_add', 'kg_query', 'message_agent', 'spawn_agent']),
  };
  const opts = { maxTokensParam: 'max_tokens' as const };
  const assemble = (): void => {
    const a = new ChatAssembler();
    for (let k = 0; k < 20; k++) a.delta({ content: 'word ' });
    a.delta({ tool_calls: [{ index: 0, id: 'call_z', function: { name: 'sandbox_exec', arguments: '' } }] });
    for (let k = 0; k < 10; k++)
      a.delta({
        tool_calls: [
          { index: 0, function: { arguments: k === 0 ? '{"language":"python","code":"' : k === 9 ? 'x"}' : 'abcdef' } },
        ],
      });
    a.finishReason = 'tool_calls';
    a.result();
  };
  const time = (f: () => void): number => {
    for (let i = 0; i < n / 10; i++) f();
    const t = performance.now();
    for (let i = 0; i < n; i++) f();
    return round(((performance.now() - t) / n) * 1000, 2);
  };
  return {
    convert_us: time(() => toChatRequest(req, 'm', opts)),
    assemble_us: time(assemble),
    json_stringify_us: time(() => JSON.stringify(req)),
  };
}

/** The chat completions server in its own process (see openai-chat-process.ts). */
async function startChatProcess(): Promise<{ url: string; close: () => Promise<void> }> {
  const h = await startHelper('openai-chat-process.ts', []);
  return { url: h.line, close: h.close };
}

/** The bare SDK proxy (see sdk-proxy-process.ts): the same hops as the daemon, none of its work. */
async function startProxyProcess(apiUrl: string): Promise<{ client: EventClient; close: () => Promise<void> }> {
  const socketPath = path.join(os.tmpdir(), `agentd-bench-proxy-${process.pid}.sock`);
  const h = await startHelper('sdk-proxy-process.ts', [socketPath, apiUrl]);
  const client = await EventClient.connect({ socketPath, reconnect: false });
  return {
    client,
    close: async () => {
      await client.close().catch(() => undefined);
      await h.close();
    },
  };
}

export async function benchCompletion(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const latencyN = opts.quick ? 200 : 1000;
  const drainN = opts.quick ? 300 : 1000;
  const sessions = 50;
  const concurrency = 50;
  const api = await startApiProcess();
  const chat = await startChatProcess();
  // The bundled build, as `daemon-control start` runs it.
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
  const d = await startDaemon({
    nodeArgs: builtDaemonArgs((await ensureBuilt(root)).entry),
    ...(process.env.BENCH_HOME ? { home: process.env.BENCH_HOME } : {}),
    // As production runs it: the test helper turns on checking every answer against its schema.
    env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: 'bench', AGENTD_DAEMON_CHECK_RESPONSES: 'false' },
    config: testConfig({
      completion: {
        max_concurrency: concurrency,
        max_queue: 100_000,
        providers: { bench: { kind: 'openai', base_url: chat.url } },
      },
      budget: { prices: { 'test-model': { input: 1, output: 2 }, 'bench/test-model': { input: 1, output: 2 } } },
      daemon: { log_level: 'warn' },
    }),
  });
  const proxy = await startProxyProcess(api.url);
  const sdk = new Anthropic({ apiKey: 'bench', baseURL: api.url, maxRetries: 0 });
  const params = (i: number) => ({
    model: 'test-model',
    max_tokens: 64,
    messages: [{ role: 'user' as const, content: `bench ${i}` }],
  });
  const direct = (i: number) => sdk.messages.stream(params(i)).finalMessage();
  const viaProxy = (i: number) =>
    proxy.client.request('completion:request', { prompt: `bench ${i}`, max_tokens: 64 }, { timeoutMs: 60_000 });
  const oai = new OpenAI({ apiKey: 'bench', baseURL: chat.url, maxRetries: 0 });
  // The bare SDK the way the provider calls it: streamed, usage in the last chunk, the text gathered.
  const directChat = async (i: number): Promise<string> => {
    const stream = await oai.chat.completions.create({
      model: 'test-model',
      max_tokens: 64,
      messages: [{ role: 'user', content: `bench ${i}` }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
    return text;
  };
  const viaDaemonChat = (i: number) =>
    d.client.request(
      'completion:request',
      { prompt: `bench ${i}`, max_tokens: 64, model: 'bench/test-model' },
      { timeoutMs: 60_000 },
    );
  const viaDaemon = (i: number, session?: string) =>
    d.client.request(
      'completion:request',
      { prompt: `bench ${i}`, max_tokens: 64, ...(session ? { session_id: session } : {}) },
      { timeoutMs: 60_000 },
    );

  try {
    // warm up both paths (JIT, connection pools, SQLite statement caches)
    for (let i = 0; i < 50; i++) {
      await direct(i);
      await viaProxy(i);
      await viaDaemon(i);
      await directChat(i);
      await viaDaemonChat(i);
    }

    // ---- latency, interleaved in rounds of 10 -----------------------------------------------------
    const lDirect: number[] = [];
    const lDaemon: number[] = [];
    const lPing: number[] = [];
    const lProxy: number[] = [];
    const lChatDirect: number[] = [];
    const lChatDaemon: number[] = [];
    for (let i = 0; i < latencyN; i += 10) {
      for (let j = 0; j < 10; j++) {
        const t = performance.now();
        await d.client.request('system:ping', {});
        lPing.push(performance.now() - t);
      }
      for (let j = 0; j < 10; j++) {
        const t = performance.now();
        await direct(i + j);
        lDirect.push(performance.now() - t);
      }
      for (let j = 0; j < 10; j++) {
        const t = performance.now();
        await viaProxy(i + j);
        lProxy.push(performance.now() - t);
      }
      for (let j = 0; j < 10; j++) {
        const t = performance.now();
        await viaDaemon(i + j);
        lDaemon.push(performance.now() - t);
      }
      for (let j = 0; j < 10; j++) {
        const t = performance.now();
        await directChat(i + j);
        lChatDirect.push(performance.now() - t);
      }
      for (let j = 0; j < 10; j++) {
        const t = performance.now();
        await viaDaemonChat(i + j);
        lChatDaemon.push(performance.now() - t);
      }
    }

    // ---- drain ------------------------------------------------------------------------------------
    // Like for like: a session_id makes the daemon send the conversation so far with every call, so
    // each direct worker keeps its session's history and sends it too. Rounds alternate the two sides
    // (fresh sessions each round, so every round does the same work) and the median ratio is reported:
    // one drain on a shared two-core machine varies by a third from run to run.
    // CPU time per drained request, which a noisy machine moves less than wall time: the daemon's own
    // (from /proc) for its drain, this process's for the direct drain (it is only the SDK calls then).
    const clk = 100; // USER_HZ
    const daemonCpuMs = (): number => {
      const f = fs.readFileSync(`/proc/${d.proc.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return ((Number(f[11]) + Number(f[12])) * 1000) / clk;
    };
    const ownCpuMs = (): number => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };
    const cpu: { direct: number[]; daemon: number[] } = { direct: [], daemon: [] };
    const directDrain = async (r: number): Promise<number> => {
      const c0 = ownCpuMs();
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
      cpu.direct.push((ownCpuMs() - c0) / drainN);
      return performance.now() - t0;
    };
    const watcher = await d.connect();
    let results = 0;
    let wanted = 0;
    let resolveAll: () => void = () => undefined;
    await watcher.subscribe(['completion:result', 'completion:error'], () => {
      if (++results === wanted) resolveAll();
    });
    // The shared group commit's counters (budget reports them in its health): commits per request
    // say how well durable writes were batched.
    const commits = async (): Promise<{ commits: number; ops: number }> => {
      const h = (await d.client.request('system:health', {})) as {
        plugins: Record<string, { details?: { group_commits?: number; ops?: number } }>;
      };
      const x = h.plugins.budget?.details ?? {};
      return { commits: x.group_commits ?? 0, ops: x.ops ?? 0 };
    };
    const daemonDrain = async (
      r: number,
    ): Promise<{ ms: number; acceptMs: number; commitsPerRequest: number; opsPerCommit: number }> => {
      const c0 = await commits();
      const cpu0 = daemonCpuMs();
      const allDone = new Promise<void>((r) => (resolveAll = r));
      wanted = results + drainN;
      const t1 = performance.now();
      await Promise.all(
        Array.from({ length: drainN }, (_, i) =>
          d.client.request(
            'completion:async',
            { prompt: `drain ${r} ${i}`, max_tokens: 64, session_id: `bench-${r}-${i % sessions}` },
            { timeoutMs: 60_000 },
          ),
        ),
      );
      const acceptMs = performance.now() - t1;
      await allDone;
      const ms = performance.now() - t1;
      cpu.daemon.push((daemonCpuMs() - cpu0) / drainN);
      const c1 = await commits();
      return {
        ms,
        acceptMs,
        commitsPerRequest: (c1.commits - c0.commits) / drainN,
        opsPerCommit: (c1.ops - c0.ops) / Math.max(1, c1.commits - c0.commits),
      };
    };
    // One untimed drain of each side first: the serial warm-up above leaves the concurrent path cold
    // (50 pooled connections, per-session queues and histories, code the JIT has not yet optimised),
    // and a daemon is measured as it runs, for hours, not in its first second. Both sides get the same.
    await directDrain(-1);
    await daemonDrain(-1);
    cpu.direct.length = 0;
    cpu.daemon.length = 0;
    const rounds = opts.quick ? 1 : 5;
    const drains: Array<{
      direct_ms: number;
      daemon_ms: number;
      ratio: number;
      accept_ms: number;
      commits_per_request: number;
      ops_per_commit: number;
    }> = [];
    for (let r = 0; r < rounds; r++) {
      const directMs = await directDrain(r);
      const dd = await daemonDrain(r);
      drains.push({
        direct_ms: round(directMs, 1),
        daemon_ms: round(dd.ms, 1),
        ratio: round(directMs / dd.ms, 3),
        accept_ms: round(dd.acceptMs, 1),
        commits_per_request: round(dd.commitsPerRequest, 2),
        ops_per_commit: round(dd.opsPerCommit, 1),
      });
    }
    await watcher.close();
    const mid = [...drains].sort((x, y) => x.ratio - y.ratio)[Math.floor(drains.length / 2)]!;

    const fsyncMs = fsyncCommitMs(d.home, 50);
    const p50Direct = pct(lDirect, 50);
    const p50Daemon = pct(lDaemon, 50);
    return {
      latency_n: latencyN,
      direct_p50_ms: round(p50Direct),
      daemon_p50_ms: round(p50Daemon),
      overhead_p50_ms: round(p50Daemon - p50Direct),
      ping_p50_ms: round(pct(lPing, 50)),
      overhead_beyond_ping_p50_ms: round(p50Daemon - p50Direct - pct(lPing, 50)),
      // The same call through a bare Node process that only relays it to the SDK (same client, same
      // hops): what any daemon in front of the SDK costs here before doing any work of its own.
      bare_proxy_p50_ms: round(pct(lProxy, 50)),
      bare_proxy_overhead_p50_ms: round(pct(lProxy, 50) - p50Direct),
      overhead_beyond_bare_proxy_p50_ms: round(p50Daemon - pct(lProxy, 50)),
      fsync_commit_p50_ms: round(fsyncMs),
      overhead_beyond_two_fsyncs_p50_ms: round(p50Daemon - p50Direct - 2 * fsyncMs),
      // The OpenAI-compatible path, beside the bare openai SDK against the same server in the same rounds.
      openai_direct_p50_ms: round(pct(lChatDirect, 50)),
      openai_daemon_p50_ms: round(pct(lChatDaemon, 50)),
      openai_overhead_p50_ms: round(pct(lChatDaemon, 50) - pct(lChatDirect, 50)),
      openai_direct_p99_ms: round(pct(lChatDirect, 99)),
      openai_daemon_p99_ms: round(pct(lChatDaemon, 99)),
      openai_conversion: conversionMicros(opts.quick ? 2000 : 20_000),
      direct_p99_ms: round(pct(lDirect, 99)),
      daemon_p99_ms: round(pct(lDaemon, 99)),
      drain_n: drainN,
      drain_sessions: sessions,
      drain_concurrency: concurrency,
      drain_direct_per_s: round((drainN / mid.direct_ms) * 1000, 1),
      drain_daemon_per_s: round((drainN / mid.daemon_ms) * 1000, 1),
      drain_ratio: mid.ratio,
      drain_rounds: drains,
      drain_accept_all_ms: mid.accept_ms,
      drain_cpu_ms_per_request: { direct_sdk: round(pct(cpu.direct, 50), 3), daemon: round(pct(cpu.daemon, 50), 3) },
      target: 'overhead_p50_ms <= 1, drain_ratio >= 0.8',
    };
  } finally {
    await d.stop();
    await proxy.close();
    await api.close();
    await chat.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  benchCompletion({ quick: process.argv.includes('--quick') }).then(
    (r) => {
      console.log(JSON.stringify(r, null, 2));
    },
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
