/**
 * MCP overhead, both ways, each beside its baseline in the same run (rounds alternate which side
 * goes first, so both see the same machine noise):
 *  - client: a tool call of a real MCP server over stdio made through agentd (`mcp:call` on the
 *    socket → router → the mcp plugin's SDK client → the server) beside the same call made directly
 *    with the SDK's client: server-everything's echo (no work at all: the worst case for a ratio)
 *    and server-filesystem's read_text_file of a small file. Target: ≤ 1.5× and ≤ 1 ms added (p50).
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
import { ROOT, startDaemon } from '../test/helpers/daemon-process.js';
import { round, summarize } from './stats.js';

const server = (name: string, ...args: string[]) => ({ command: process.execPath, args: [path.join(ROOT, 'node_modules', '@modelcontextprotocol', name, 'dist', 'index.js'), ...args] });
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

/** Rounds of `n` calls of each side, alternating which goes first; every call a sample. */
async function compare(rounds: number, n: number, a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<[number[], number[]]> {
  const xs: number[] = [];
  const ys: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      xs.push(...(await time(n, a)));
      ys.push(...(await time(n, b)));
    } else {
      ys.push(...(await time(n, b)));
      xs.push(...(await time(n, a)));
    }
  }
  return [xs, ys];
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
  const warm = opts.quick ? 100 : 500;
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-bench-mcp-')));
  const file = path.join(dir, 'notes.txt');
  fs.writeFileSync(file, 'a small file\n'.repeat(20));
  const FILESYSTEM = server('server-filesystem', dir);
  const b = await ensureBuilt(ROOT);
  const d = await startDaemon({
    nodeArgs: builtDaemonArgs(b.entry),
    config: YAML.stringify({ daemon: { log_level: 'warn', disabled_plugins: ['sandbox'] }, mcp: { servers: { everything: EVERYTHING, fs: FILESYSTEM } } }),
    readyTimeoutMs: 60_000,
  });
  const direct = new Client({ name: 'bench', version: '1' });
  await direct.connect(new StdioClientTransport({ ...EVERYTHING, stderr: 'ignore' }));
  const directFs = new Client({ name: 'bench', version: '1' });
  await directFs.connect(new StdioClientTransport({ ...FILESYSTEM, stderr: 'ignore' }));
  const env: Record<string, string> = { ...(process.env as Record<string, string>), AGENTD_HOME: d.home, AGENTD_SOCKET: d.socketPath };
  delete env.NODE_OPTIONS;
  const viaMcp = new Client({ name: 'bench', version: '1' });
  await viaMcp.connect(new StdioClientTransport({ command: path.join(ROOT, 'daemon-control.ts'), args: ['mcp', '--expose', 'system:ping'], env, cwd: ROOT, stderr: 'ignore' }));
  try {
    const args = { message: 'hello' };
    const callDirect = () => direct.callTool({ name: 'echo', arguments: args });
    const callThrough = () => d.client.request('mcp:call', { server: 'everything', tool: 'echo', arguments: args });
    // Warm both paths (the daemon starts the server on first use; JIT on both sides).
    await time(warm, callThrough);
    await time(warm, callDirect);
    const [through, directS] = await compare(rounds, n, callThrough, callDirect);

    const readArgs = { path: file };
    const readDirect = () => directFs.callTool({ name: 'read_text_file', arguments: readArgs });
    const readThrough = () => d.client.request('mcp:call', { server: 'fs', tool: 'read_text_file', arguments: readArgs });
    await time(warm, readThrough);
    await time(warm, readDirect);
    const [readT, readD] = await compare(rounds, n, readThrough, readDirect);

    const pingMcp = () => viaMcp.callTool({ name: 'system_ping', arguments: {} });
    const pingSocket = () => d.client.request('system:ping');
    await time(warm, pingMcp);
    await time(warm, pingSocket);
    const [mcpS, socketS] = await compare(rounds, n, pingMcp, pingSocket);

    const target = (r: Record<string, unknown>) => ({ ...r, meets_target: (r.ratio_p50 as number) <= 1.5 && (r.added_p50_us as number) <= 1000 });
    return {
      target: '≤ 1.5× and ≤ 1000 µs added (p50)',
      client_echo: { tool: 'server-everything echo over stdio', ...target(report(through, directS)) },
      client_read_file: { tool: 'server-filesystem read_text_file (240 bytes) over stdio', ...target(report(readT, readD)) },
      server: { tool: 'daemon-control mcp system_ping vs system:ping on the socket', ...report(mcpS, socketS) },
    };
  } finally {
    await viaMcp.close();
    await direct.close();
    await directFs.close();
    await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchMcp({ quick: process.argv.includes('--quick') }), null, 2));
}
