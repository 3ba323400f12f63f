/**
 * Agents using MCP servers through the mcp plugin: the reference servers from npm
 * (`@modelcontextprotocol/server-everything`, `@modelcontextprotocol/server-filesystem` confined to a
 * temp dir, run from node_modules), the tests' own server for what those cannot script, and a
 * model (the local Messages API server) that calls their tools. Supervision: a server killed
 * mid-call is restarted and the call answers UNAVAILABLE; one that never answers times out.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import { agentConfig, collect, errorOf, KEY, toolResultsOf, toolUse, waitFor } from '../agent/helpers.js';
import { everythingServer, filesystemServer, tempDir, testServer } from './helpers.js';

let api: MessagesApiServer;
let d: DaemonHandle;
let dir: string;
let http: ChildProcess;
let httpPort: number;

const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

interface ServerRow {
  name: string;
  state: string;
  pid: number | null;
  restarts: number;
  reason: string | null;
}
const servers = async (): Promise<ServerRow[]> =>
  (await d.client.request<{ servers: ServerRow[] }>('mcp:servers')).servers;
const server = async (name: string): Promise<ServerRow> => (await servers()).find((s) => s.name === name)!;
type Tools = Array<{ name: string; input_schema: Record<string, unknown> }>;
const toolsSent = (i: number): Tools => (api.messageRequests()[i]!.body.tools ?? []) as Tools;

beforeAll(async () => {
  dir = tempDir('agentd-mcp-fs-');
  fs.writeFileSync(path.join(dir, 'README.txt'), 'a file the agent may read\n');
  httpPort = await freePort();
  const ev = everythingServer();
  http = spawn(ev.command, [ev.args[0]!, 'streamableHttp'], {
    env: { ...process.env, PORT: String(httpPort) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let httpErr = '';
  http.stderr!.on('data', (b) => (httpErr += b));
  await waitFor(() => httpErr.includes('listening on port'), 20_000, 'the HTTP MCP server');
  api = await startMessagesApiServer();
  d = await startDaemon({
    env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
    config: agentConfig({
      mcp: {
        restart_initial_ms: 200,
        servers: {
          everything: everythingServer(),
          fs: filesystemServer(dir),
          test: testServer(),
          hung: { ...testServer(), timeout_ms: 800 },
          silent: { ...testServer('--no-init'), start_timeout_ms: 1500 },
          broken: testServer('--exit-on-start'),
          missing: { command: 'agentd-no-such-command' },
          web: { url: `http://127.0.0.1:${httpPort}/mcp` },
        },
      },
    }),
  });
}, 60_000);

afterAll(async () => {
  await d?.stop();
  await api?.close();
  http?.kill();
});

beforeEach(() => api.reset());

describe('mcp plugin: servers', () => {
  it('starts a server on first use; until then it is idle', async () => {
    expect((await servers()).map((s) => [s.name, s.state])).toEqual([
      ['everything', 'idle'],
      ['fs', 'idle'],
      ['test', 'idle'],
      ['hung', 'idle'],
      ['silent', 'idle'],
      ['broken', 'idle'],
      ['missing', 'idle'],
      ['web', 'idle'],
    ]);
    const r = await d.client.request<{ tools: Array<{ name: string; model_name: string; problem: string | null }> }>(
      'mcp:tools',
      { server: 'fs' },
    );
    expect(r.tools.map((t) => t.model_name)).toContain('fs__read_text_file');
    const fsRow = await server('fs');
    expect(fsRow.state).toBe('ready');
    expect(fsRow.pid).toBeGreaterThan(0);
  });

  it('passes tool schemas on exactly as the server declares them', async () => {
    const direct = new Client({ name: 'direct', version: '1' });
    await direct.connect(new StdioClientTransport({ ...everythingServer(), stderr: 'ignore' }));
    const declared = (await direct.listTools()).tools;
    await direct.close();
    const r = await d.client.request<{ tools: Array<{ name: string; input_schema: unknown; description: string }> }>(
      'mcp:tools',
      { server: 'everything' },
    );
    expect(r.tools.map((t) => t.name)).toEqual(declared.map((t) => t.name));
    for (const t of declared) expect(r.tools.find((x) => x.name === t.name)!.input_schema).toEqual(t.inputSchema);
  });

  it("calls a tool: the content as the server gave it; a tool's own failure is is_error, not a daemon error", async () => {
    const ok = await d.client.request('mcp:call', { server: 'everything', tool: 'get-sum', arguments: { a: 2, b: 3 } });
    expect(ok).toMatchObject({
      server: 'everything',
      tool: 'get-sum',
      is_error: false,
      content: [{ type: 'text', text: expect.stringContaining('5') }],
    });
    const denied = await d.client.request('mcp:call', {
      server: 'fs',
      tool: 'read_text_file',
      arguments: { path: '/etc/hostname' },
    });
    expect(denied).toMatchObject({
      is_error: true,
      content: [{ type: 'text', text: expect.stringMatching(/denied/i) }],
    });
    expect((await errorOf(d.client.request('mcp:call', { server: 'nope', tool: 'x' }))).code).toBe('NOT_FOUND');
    const e = await errorOf(d.client.request('mcp:call', { server: 'test', tool: 'nosuch' }));
    expect([e.code, e.message]).toEqual([
      'NOT_FOUND',
      expect.stringContaining('has no tool "nosuch" (it has: echo, sleep, hang'),
    ]);
  });

  it('reaches a Streamable HTTP server by its url', async () => {
    const r = await d.client.request('mcp:call', { server: 'web', tool: 'echo', arguments: { message: 'over http' } });
    expect(r).toMatchObject({ is_error: false, content: [{ type: 'text', text: 'Echo: over http' }] });
    expect((await server('web')).state).toBe('ready');
  });

  it('a server that cannot start is UNAVAILABLE with the reason, and the plugin is degraded naming it', async () => {
    const missing = await errorOf(d.client.request('mcp:tools', { server: 'missing' }));
    expect([missing.code, missing.message]).toEqual([
      'UNAVAILABLE',
      'MCP server missing did not start: command not found: "agentd-no-such-command"',
    ]);
    const broken = await errorOf(
      d.client.request('mcp:call', { server: 'broken', tool: 'echo', arguments: { text: 'x' } }),
    );
    expect(broken.code).toBe('UNAVAILABLE');
    expect(broken.message).toMatch(/exited before answering initialize; it wrote: test server: refusing to start/);
    const again = await errorOf(d.client.request('mcp:tools', { server: 'broken' }));
    expect(again.message).toMatch(/next start in \d+ ms/);
    const silent = await errorOf(d.client.request('mcp:tools', { server: 'silent' }));
    expect([silent.code, silent.message]).toEqual([
      'UNAVAILABLE',
      'MCP server silent did not start: no answer to initialize within 1500 ms',
    ]);
    expect((await server('silent')).state).toBe('failed');
    const plugin = (
      await d.client.request<{ plugins: Array<{ name: string; status: string; reason: string }> }>('plugin:list')
    ).plugins.find((p) => p.name === 'mcp')!;
    expect(plugin.status).toBe('degraded');
    expect(plugin.reason).toContain('server missing failed: command not found');
    // Without a server named, the others still answer and the failing ones are listed.
    const all = await d.client.request<{ tools: Array<{ server: string }>; errors: Record<string, { code: string }> }>(
      'mcp:tools',
      {},
    );
    expect(Object.keys(all.errors).sort()).toEqual(['broken', 'missing', 'silent']);
    expect(new Set(all.tools.map((t) => t.server))).toEqual(new Set(['everything', 'fs', 'test', 'hung', 'web']));
  });

  it('a call the server never answers times out; the server stays up', async () => {
    const pid = (await server('test')).pid;
    const t0 = Date.now();
    const e = await errorOf(d.client.request('mcp:call', { server: 'test', tool: 'hang' }, { timeoutMs: 1000 }));
    expect(e.code).toBe('TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(3000);
    const hung = await errorOf(d.client.request('mcp:call', { server: 'hung', tool: 'hang' }));
    expect([hung.code, hung.message]).toEqual([
      'TIMEOUT',
      expect.stringContaining('MCP server hung did not answer hang in time'),
    ]);
    expect(
      await d.client.request('mcp:call', { server: 'test', tool: 'echo', arguments: { text: 'still here' } }),
    ).toMatchObject({ content: [{ text: 'still here' }] });
    expect((await server('test')).pid).toBe(pid);
  });
});

describe('mcp plugin: agents', () => {
  it("an agent calls the servers' tools as <server>__<tool>, each an mcp:call with its causality and deadline", async () => {
    await d.client.request('agent:spawn', { agent_id: 'fsa', tools: ['mcp:fs', 'mcp:everything/echo', 'kg_query'] });
    const note = path.join(dir, 'notes.txt');
    api.enqueue(
      toolUse('fs__write_file', { path: note, content: 'hello from the agent' }),
      {
        content: [
          { type: 'tool_use', name: 'fs__read_text_file', input: { path: note } },
          { type: 'tool_use', name: 'everything__echo', input: { message: 'hi' } },
          { type: 'tool_use', name: 'everything__get-env', input: {} },
        ],
      },
      { text: 'Wrote and read the note.' },
    );
    const events = await collect(d.client, ['mcp:call_started', 'mcp:call_finished', 'agent:turn_started']);
    const r = await d.client.request<{
      reply: string;
      tool_calls: Array<{ name: string; is_error: boolean; error_code: string | null }>;
    }>('agent:send', { agent_id: 'fsa', message: 'write a note, then read it' });
    expect(r.reply).toBe('Wrote and read the note.');
    expect(fs.readFileSync(note, 'utf8')).toBe('hello from the agent');
    // The model saw the servers' tools by their model names, with the declared schemas; and its own.
    const sent = toolsSent(0);
    const names = sent.map((t) => t.name);
    expect(names).toContain('kg_query');
    expect(names).toContain('fs__write_file');
    expect(names).toContain('everything__echo');
    expect(names).not.toContain('everything__get-env');
    const declared = await d.client.request<{ tools: Array<{ name: string; input_schema: unknown }> }>('mcp:tools', {
      server: 'fs',
    });
    expect(sent.find((t) => t.name === 'fs__write_file')!.input_schema).toEqual(
      declared.tools.find((t) => t.name === 'write_file')!.input_schema,
    );
    const results = toolResultsOf(api.messageRequests()[2]!);
    expect(results.map((x) => [x.content, x.is_error ?? false])).toEqual([
      ['hello from the agent', false],
      ['Echo: hi', false],
      [expect.stringContaining('NOT_ALLOWED'), true],
    ]);
    expect(r.tool_calls.map((c) => [c.name, c.error_code])).toEqual([
      ['fs__write_file', null],
      ['fs__read_text_file', null],
      ['everything__echo', null],
      ['everything__get-env', 'NOT_ALLOWED'],
    ]);
    const started = await waitFor(() => events.find((e) => e.event === 'agent:turn_started'));
    const calls = events.filter((e) => e.event === 'mcp:call_finished');
    expect(calls.map((e) => `${String(e.data.server)}/${String(e.data.tool)}`)).toEqual([
      'fs/write_file',
      'fs/read_text_file',
      'everything/echo',
    ]);
    for (const e of [...calls, ...events.filter((x) => x.event === 'mcp:call_started')]) {
      expect(e.data.agent_id).toBe('fsa');
      expect(e.context?.agent_id).toBe('fsa');
      expect(e.context?.root_id).toBe(started.context?.root_id);
    }
    // The turn's tool deadline (agent.tool_timeout_ms) is the call's.
    const first = events.find((e) => e.event === 'mcp:call_started')!;
    expect(Number(first.data.deadline) - first.timestamp).toBeGreaterThan(100);
    expect(Number(first.data.deadline) - first.timestamp).toBeLessThanOrEqual(120.5);
  });

  it('tools a model API would refuse are reported and left out; naming one, or an unknown server, is an error', async () => {
    const a = await d.client.request<{ tool_warnings: string[] }>('agent:spawn', {
      agent_id: 'tester',
      tools: ['mcp:test'],
    });
    expect(a.tool_warnings).toEqual([
      expect.stringMatching(
        /^mcp:test\/lookup\.by\.name left out: the name the model would see, "test__lookup\.by\.name", is not 1-64 letters/,
      ),
      expect.stringMatching(/^mcp:test\/choose left out: its input schema has anyOf at the top level/),
    ]);
    // Reported once, when the server's tools were first listed.
    const reported = await d.client.request<{ events: Array<{ data: Record<string, unknown> }> }>('monitor:events', {
      patterns: ['mcp:tool_rejected'],
    });
    expect(
      reported.events
        .filter((e) => e.data.server === 'test')
        .map((e) => e.data.tool)
        .sort(),
    ).toEqual(['choose', 'lookup.by.name']);
    api.enqueue({ text: 'ok' });
    await d.client.request('agent:send', { agent_id: 'tester', message: 'hello' });
    expect(toolsSent(0).map((t) => t.name)).toEqual([
      'test__echo',
      'test__sleep',
      'test__hang',
      'test__pid',
      'test__fail',
    ]);
    const named = await errorOf(d.client.request('agent:spawn', { agent_id: 't2', tools: ['mcp:test/choose'] }));
    expect([named.code, named.message]).toEqual([
      'INVALID_DATA',
      expect.stringContaining('mcp:test/choose cannot be given to a model: its input schema has anyOf'),
    ]);
    expect((await errorOf(d.client.request('agent:spawn', { agent_id: 't3', tools: ['mcp:nosuch'] }))).message).toMatch(
      /no MCP server "nosuch" \(configured in mcp\.servers: everything, fs/,
    );
    expect((await errorOf(d.client.request('agent:spawn', { agent_id: 't4', tools: ['mcp:test/nosuch'] }))).code).toBe(
      'NOT_FOUND',
    );
    expect((await errorOf(d.client.request('agent:spawn', { agent_id: 't5', tools: ['mcp:bad__name'] }))).code).toBe(
      'INVALID_DATA',
    );
  });

  it('a server killed mid-call: the call answers UNAVAILABLE, the server is restarted, the turn goes on', async () => {
    await d.client.request('agent:spawn', { agent_id: 'longa', tools: ['mcp:everything'] });
    const before = await server('everything');
    api.enqueue(
      toolUse('everything__trigger-long-running-operation', { duration: 60, steps: 60 }),
      toolUse('everything__echo', { message: 'after the restart' }),
      { text: 'done' },
    );
    const events = await collect(d.client, ['mcp:call_started', 'mcp:server_state']);
    const send = d.client.request<{ reply: string; tool_calls: Array<{ error_code: string | null }> }>('agent:send', {
      agent_id: 'longa',
      message: 'run it',
    });
    await waitFor(() => events.find((e) => e.event === 'mcp:call_started'), 20_000, 'the call');
    process.kill(before.pid!, 'SIGKILL');
    const r = await send;
    expect(r.reply).toBe('done');
    expect(r.tool_calls.map((c) => c.error_code)).toEqual(['UNAVAILABLE', null]);
    const failed = toolResultsOf(api.messageRequests()[1]!)[0]!;
    expect([failed.is_error, failed.content]).toEqual([
      true,
      expect.stringContaining('MCP server everything exited during trigger-long-running-operation'),
    ]);
    expect(toolResultsOf(api.messageRequests()[2]!)[0]!.content).toBe('Echo: after the restart');
    const states = events
      .filter((e) => e.event === 'mcp:server_state' && e.data.server === 'everything')
      .map((e) => e.data.state);
    expect(states).toEqual(['backoff', 'starting', 'ready']);
    const after = await server('everything');
    expect(after.restarts).toBe(before.restarts + 1);
    expect(after.pid).not.toBe(before.pid);
  }, 60_000);

  it("an agent's call to a server that never answers times out and the model is told", async () => {
    await d.client.request('agent:spawn', { agent_id: 'waiter', tools: ['mcp:hung/hang'] });
    api.enqueue(toolUse('hung__hang', {}), { text: 'it timed out' });
    const r = await d.client.request<{ reply: string; tool_calls: Array<{ error_code: string | null }> }>(
      'agent:send',
      { agent_id: 'waiter', message: 'wait' },
    );
    expect(r.tool_calls.map((c) => c.error_code)).toEqual(['TIMEOUT']);
    expect(r.reply).toBe('it timed out');
  });

  it('cancelling a turn cancels its MCP call in flight', async () => {
    await d.client.request('agent:spawn', { agent_id: 'sleepy', tools: ['mcp:test/sleep'] });
    api.enqueue(toolUse('test__sleep', { ms: 60_000 }));
    const events = await collect(d.client, ['mcp:call_started', 'mcp:call_finished']);
    const send = d.client.request('agent:send', { agent_id: 'sleepy', message: 'sleep' });
    await waitFor(() => events.find((e) => e.event === 'mcp:call_started'), 20_000, 'the call');
    const c = await d.client.request('agent:cancel', { agent_id: 'sleepy' });
    expect(c).toMatchObject({ cancelled: true, status: 'cancelling' });
    expect((await errorOf(send)).code).toBe('CANCELLED');
    const fin = await waitFor(() => events.find((e) => e.event === 'mcp:call_finished'));
    expect(fin.data.error_code).toBe('CANCELLED');
    expect(api.messageRequests()).toHaveLength(1);
    // The history stays a valid exchange: the next message is answered.
    api.enqueue({ text: 'awake' });
    expect(await d.client.request('agent:send', { agent_id: 'sleepy', message: 'wake up' })).toMatchObject({
      reply: 'awake',
    });
    const last = api.messageRequests()[1]!.body.messages as Array<{ role: string; content: unknown }>;
    expect(last.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
  }, 60_000);
});
