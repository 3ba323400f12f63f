/**
 * MCP overhead, both ways, each beside its baseline in the same run (rounds alternate which side
 * goes first, so both see the same machine noise):
 *  - client: a tool call of a real MCP server over stdio made through agentd (`mcp:call` on the
 *    socket → router → the mcp plugin's SDK client → the server) beside the same call made directly
 *    with the SDK's client: server-everything's echo (no work at all: the worst case for a ratio)
 *    and server-filesystem's read_text_file of a small file. Target: ≤ 1.5× and ≤ 1 ms added (p50).
 *    For echo, a third side: the same call through a bare proxy process (mcp-proxy-process.ts: agentd's
 *    frames on a Unix socket, the SDK's client, nothing else), reached with the same client library
 *    as the daemon: the floor of any daemon in front of the server on this machine, so what agentd
 *    adds of its own is the distance to it. And the three sides once more with calls alternating one
 *    by one instead of in rounds (no side keeps its processes' caches and CPUs warm for the next call).
 *  - server: an MCP client calling `daemon-control mcp`'s `system_ping` beside the same event sent
 *    over the socket with the event client: what the MCP layer (stdio, JSON-RPC, mcp:invoke) adds.
 * The daemon runs from its bundle, as `daemon-control start` runs it. Alone: `npx tsx bench/mcp.ts [--quick]`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import YAML from 'yaml';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { builtDaemonArgs, ensureBuilt } from '../daemon/build.js';
import { spawn } from 'node:child_process';
import { EventClient } from '../client/event-client.js';
import { ROOT, startDaemon } from '../test/helpers/daemon-process.js';
import { round, summarize } from './stats.js';

const server = (name: string, ...args: string[]) => ({
  command: process.execPath,
  args: [path.join(ROOT, 'node_modules', '@modelcontextprotocol', name, 'dist', 'index.js'), ...args],
});
const EVERYTHING = server('server-everything', 'stdio');

async function time(n: number, call: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await call();
    out.push(performance.now() - t0);
  }
  return out;
}

/** Rounds of `n` calls of each side, the order rotating from round to round; every call a sample. */
async function compareN(rounds: number, n: number, sides: Array<() => Promise<unknown>>): Promise<number[][]> {
  const out = sides.map((): number[] => []);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < sides.length; k++) {
      const i = (r + k) % sides.length;
      out[i]!.push(...(await time(n, sides[i]!)));
    }
  }
  return out;
}

async function compare(
  rounds: number,
  n: number,
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
): Promise<[number[], number[]]> {
  const [xs, ys] = await compareN(rounds, n, [a, b]);
  return [xs!, ys!];
}

/** `n` turns of one call of each side, alternating call by call (the order rotating); every call a sample. */
async function interleave(n: number, sides: Array<() => Promise<unknown>>): Promise<number[][]> {
  const out = sides.map((): number[] => []);
  for (let r = 0; r < n; r++) {
    for (let k = 0; k < sides.length; k++) {
      const i = (r + k) % sides.length;
      const t0 = performance.now();
      await sides[i]!();
      out[i]!.push(performance.now() - t0);
    }
  }
  return out;
}

/** The bare proxy (see mcp-proxy-process.ts) in front of its own server, reached with the event client. */
async function startProxy(server: {
  command: string;
  args: string[];
}): Promise<{ client: EventClient; close: () => Promise<void> }> {
  const socketPath = path.join(os.tmpdir(), `agentd-bench-mcp-proxy-${process.pid}.sock`);
  const p = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(path.dirname(new URL(import.meta.url).pathname), 'mcp-proxy-process.ts'),
      socketPath,
      server.command,
      ...server.args,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    p.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    p.once('exit', (code) => reject(new Error(`mcp-proxy-process.ts exited (${code})`)));
  });
  const client = await EventClient.connect({ socketPath, reconnect: false });
  return {
    client,
    close: async () => {
      await client.close().catch(() => undefined);
      await new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.stdin!.end();
        setTimeout(() => p.kill('SIGKILL'), 2000).unref();
      });
    },
  };
}

function report(through: number[], direct: number[]): Record<string, unknown> {
  const t = summarize(through);
  const dd = summarize(direct);
  return {
    through_agentd: t,
    direct: dd,
    ratio_p50: round(t.p50_us / dd.p50_us, 3),
    added_p50_us: round(t.p50_us - dd.p50_us),
    ratio_p99: round(t.p99_us / dd.p99_us, 3),
  };
}

export async function benchMcp(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const rounds = opts.quick ? 2 : 10;
  const n = opts.quick ? 50 : 200;
  // Every side is warmed with the same number of calls, enough for the daemon's longer path (kernel,
  // plugin, SDK) to be compiled: after 1,000 calls V8 was still optimizing functions on its
  // background threads for thousands more (130 optimizations in the next 5,000 calls, none after
  // 15,000), which took CPU from the three processes of the call and doubled agentd's p50.
  const warm = opts.quick ? 1000 : 5000;
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-bench-mcp-')));
  const file = path.join(dir, 'notes.txt');
  fs.writeFileSync(file, 'a small file\n'.repeat(20));
  const FILESYSTEM = server('server-filesystem', dir);
  const b = await ensureBuilt(ROOT);
  const d = await startDaemon({
    nodeArgs: builtDaemonArgs(b.entry),
    config: YAML.stringify({
      daemon: { log_level: 'warn', disabled_plugins: ['sandbox'] },
      mcp: { servers: { everything: EVERYTHING, fs: FILESYSTEM } },
    }),
    // As in production: the test helper turns on every answer's schema check, which is for tests.
    env: { AGENTD_DAEMON_CHECK_RESPONSES: 'false' },
    readyTimeoutMs: 60_000,
  });
  const direct = new Client({ name: 'bench', version: '1' });
  await direct.connect(new StdioClientTransport({ ...EVERYTHING, stderr: 'ignore' }));
  const directFs = new Client({ name: 'bench', version: '1' });
  await directFs.connect(new StdioClientTransport({ ...FILESYSTEM, stderr: 'ignore' }));
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    AGENTD_HOME: d.home,
    AGENTD_SOCKET: d.socketPath,
  };
  delete env.NODE_OPTIONS;
  const proxy = await startProxy(EVERYTHING);
  const viaMcp = new Client({ name: 'bench', version: '1' });
  await viaMcp.connect(
    new StdioClientTransport({
      command: path.join(ROOT, 'daemon-control.ts'),
      args: ['mcp', '--expose', 'system:ping'],
      env,
      cwd: ROOT,
      stderr: 'ignore',
    }),
  );
  try {
    const args = { message: 'hello' };
    const callDirect = () => direct.callTool({ name: 'echo', arguments: args });
    const callThrough = () => d.client.request('mcp:call', { server: 'everything', tool: 'echo', arguments: args });
    const callProxy = () => proxy.client.request('mcp:call', { server: 'everything', tool: 'echo', arguments: args });
    // Warm every path (the daemon starts the server on first use; JIT on all sides).
    await time(warm, callThrough);
    await time(warm, callDirect);
    await time(warm, callProxy);
    const [through, directS, proxyS] = (await compareN(rounds, n, [callThrough, callDirect, callProxy])) as [
      number[],
      number[],
      number[],
    ];
    const [throughI, directI, proxyI] = (await interleave(rounds * n, [callThrough, callDirect, callProxy])) as [
      number[],
      number[],
      number[],
    ];

    const readArgs = { path: file };
    const readDirect = () => directFs.callTool({ name: 'read_text_file', arguments: readArgs });
    const readThrough = () =>
      d.client.request('mcp:call', { server: 'fs', tool: 'read_text_file', arguments: readArgs });
    await time(warm, readThrough);
    await time(warm, readDirect);
    const [readT, readD] = await compare(rounds, n, readThrough, readDirect);

    const pingMcp = () => viaMcp.callTool({ name: 'system_ping', arguments: {} });
    const pingSocket = () => d.client.request('system:ping');
    await time(warm, pingMcp);
    await time(warm, pingSocket);
    const [mcpS, socketS] = await compare(rounds, n, pingMcp, pingSocket);

    const target = (r: Record<string, unknown>) => ({
      ...r,
      meets_target: (r.ratio_p50 as number) <= 1.5 && (r.added_p50_us as number) <= 1000,
    });
    const floor = (t: number[], dd: number[], px: number[]) => {
      const p = summarize(px).p50_us;
      const dp = summarize(dd).p50_us;
      const tp = summarize(t).p50_us;
      return {
        bare_proxy_p50_us: p,
        bare_proxy_ratio_p50: round(p / dp, 3),
        bare_proxy_added_p50_us: round(p - dp),
        agentd_beyond_bare_proxy_p50_us: round(tp - p),
      };
    };
    return {
      target: '≤ 1.5× and ≤ 1000 µs added (p50)',
      client_echo: {
        tool: 'server-everything echo over stdio',
        ...target(report(through, directS)),
        ...floor(through, directS, proxyS),
      },
      client_echo_alternating_calls: {
        tool: 'the same, calls alternating one by one',
        ...target(report(throughI, directI)),
        ...floor(throughI, directI, proxyI),
      },
      client_read_file: {
        tool: 'server-filesystem read_text_file (240 bytes) over stdio',
        ...target(report(readT, readD)),
      },
      server: { tool: 'daemon-control mcp system_ping vs system:ping on the socket', ...report(mcpS, socketS) },
    };
  } finally {
    await viaMcp.close();
    await proxy.close();
    await direct.close();
    await directFs.close();
    await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchMcp({ quick: process.argv.includes('--quick') }), null, 2));
}
