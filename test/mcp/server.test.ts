/**
 * `daemon-control mcp` driven by the MCP SDK's own client over stdio: tools generated from the
 * event schemas, calls that succeed and fail with each kind of error, progress while a turn or a
 * sandbox run goes on, cancellation that reaches the daemon, and resources.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';
import {
  startMessagesApiServer,
  type MessagesApiServer,
  type RecordedRequest,
} from '../fixtures/messages-api-server.js';
import { agentConfig, collect, KEY, toolUse, waitFor } from '../agent/helpers.js';
import { describeDocker } from '../sandbox/docker-env.js';
import { connectMcp, testServer, textOf } from './helpers.js';

const contentText = (r: { contents: Array<{ uri: string } & ({ text: string } | { blob: string })> }): string => {
  const c = r.contents[0];
  return c && 'text' in c ? c.text : '';
};

let api: MessagesApiServer;
let d: DaemonHandle;
let mcp: Client;

function lastUser(r: RecordedRequest): { text: string; toolResult: boolean } {
  const msgs = r.body.messages as Array<{ role: string; content: unknown }>;
  const c = msgs[msgs.length - 1]!.content;
  if (typeof c === 'string') return { text: c, toolResult: false };
  // The newest block: a cancelled turn's message is merged with the next one.
  const last = (c as Array<{ type: string; text?: string }>).at(-1)!;
  return { text: last.text ?? '', toolResult: last.type === 'tool_result' };
}

beforeAll(async () => {
  api = await startMessagesApiServer();
  api.setHandler((req) => {
    const u = lastUser(req);
    if (u.toolResult) return { text: 'The graph has node n1.', chunkChars: 3, eventDelayMs: 2 };
    if (u.text.includes('look in the graph')) return toolUse('kg_query', { label: 'Concept' });
    if (u.text.includes('wait forever')) return { kind: 'hang' };
    return { text: `echo: ${u.text}` };
  });
  d = await startDaemon({
    env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
    config: agentConfig(
      {
        mcp: {
          servers: { missing: { command: 'agentd-no-such-command' }, slow: { ...testServer(), timeout_ms: 500 } },
        },
      },
      { sandbox: true },
    ),
  });
  ({ client: mcp } = await connectMcp(d));
  await d.client.request('kg:add_nodes', {
    nodes: [{ id: 'n1', label: 'Concept', properties: { name: 'attention' } }],
  });
  await d.client.request('agent:spawn', { agent_id: 'ada', tools: ['kg_query'], stream: true });
}, 60_000);

afterAll(async () => {
  await mcp?.close();
  await d?.stop();
  await api?.close();
});

describe('daemon-control mcp: tools', () => {
  it("offers the default set as <ns>_<action> tools whose input schemas are the catalog's", async () => {
    const { tools } = await mcp.listTools();
    const names = tools.map((t) => t.name);
    for (const n of [
      'agent_spawn',
      'agent_send',
      'agent_cancel',
      'kg_add_nodes',
      'kg_find',
      'sandbox_exec',
      'budget_status',
      'completion_request',
    ])
      expect(names).toContain(n);
    for (const n of [
      'system_shutdown',
      'plugin_reload',
      'monitor_subscribe',
      'sandbox_create',
      'budget_set',
      'completion_async',
      'mcp_invoke',
      'mcp_call',
    ])
      expect(names).not.toContain(n);
    const discover = await d.client.request<{
      events: { kg: Array<{ event: string; schema: Record<string, unknown> }> };
    }>('system:discover', { namespace: 'kg', schemas: true });
    const { $schema: _s, ...catalog } = discover.events.kg.find((e) => e.event === 'kg:add_nodes')!.schema;
    const tool = tools.find((t) => t.name === 'kg_add_nodes')!;
    expect(tool.inputSchema).toEqual(catalog);
    expect(tool.inputSchema.required).toEqual(['nodes']);
    expect(tool.description).toMatch(/node/i);
  });

  it('--expose chooses the events; shutdown is offered only when named exactly', async () => {
    const a = await connectMcp(d, ['--expose', 'system,kg:get']);
    expect((await a.client.listTools()).tools.map((t) => t.name).sort()).toEqual([
      'kg_get',
      'system_discover',
      'system_health',
      'system_help',
      'system_metrics',
      'system_ping',
    ]);
    await a.client.close();
    const b = await connectMcp(d, ['--expose', 'system:shutdown,plugin:*']);
    expect((await b.client.listTools()).tools.map((t) => t.name).sort()).toEqual(['plugin_list', 'system_shutdown']);
    await b.client.close();
  });

  it("answers with the event's data, as text and as structured content", async () => {
    const r = await mcp.callTool({ name: 'kg_get', arguments: { id: 'n1' } });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toEqual({ node: { id: 'n1', label: 'Concept', properties: { name: 'attention' } } });
    expect(JSON.parse(textOf(r))).toEqual(r.structuredContent);
  });

  it.each([
    ['NOT_FOUND', 'kg_get', { id: 'nope' }],
    ['INVALID_DATA', 'kg_add_nodes', { nodes: 'not a list' }],
    ['CONFLICT', 'agent_spawn', { agent_id: 'ada' }],
  ])('a %s error is a tool error whose text starts with the code', async (code, name, args) => {
    const r = await mcp.callTool({ name, arguments: args });
    expect(r.isError).toBe(true);
    expect(textOf(r).startsWith(`${code}: `)).toBe(true);
  });

  it('BUDGET_EXCEEDED, UNAVAILABLE and TIMEOUT come back the same way', async () => {
    await d.client.request('budget:set', { scope: 'agent', id: 'broke', limit_usd: 0.000001 });
    const budget = await mcp.callTool({
      name: 'completion_request',
      arguments: { prompt: 'hello', agent_id: 'broke' },
    });
    expect(textOf(budget)).toMatch(/^BUDGET_EXCEEDED: /);
    const m = await connectMcp(d, ['--expose', 'mcp']);
    const down = await m.client.callTool({ name: 'mcp_call', arguments: { server: 'missing', tool: 'x' } });
    expect(textOf(down)).toMatch(/^UNAVAILABLE: MCP server missing did not start: command not found/);
    const hung = await m.client.callTool({ name: 'mcp_call', arguments: { server: 'slow', tool: 'hang' } });
    expect(textOf(hung)).toMatch(/^TIMEOUT: /);
    await m.client.close();
  });

  it('an unknown tool is a protocol error', async () => {
    await expect(mcp.callTool({ name: 'kg_nope', arguments: {} })).rejects.toThrow(/-32602.*unknown tool "kg_nope"/);
  });
});

describe('daemon-control mcp: long calls', () => {
  it("reports an agent turn's tool calls and streamed words as progress", async () => {
    const notes: string[] = [];
    const r = await mcp.callTool(
      { name: 'agent_send', arguments: { agent_id: 'ada', message: 'look in the graph' } },
      undefined,
      {
        onprogress: (p) => notes.push(p.message ?? ''),
      },
    );
    expect(r.isError).toBeFalsy();
    expect((r.structuredContent as { reply: string }).reply).toBe('The graph has node n1.');
    expect(notes[0]).toMatch(/^→ kg_query \{"label":"Concept"\}/);
    expect(notes.some((n) => /^← kg_query done in \d+ ms/.test(n))).toBe(true);
    // The reply arrived in pieces before the answer.
    expect(notes.filter((n) => !n.startsWith('→') && !n.startsWith('←')).join('')).toBe('The graph has node n1.');
  });

  it('a call without a progress token gets no progress', async () => {
    const got: unknown[] = [];
    mcp.fallbackNotificationHandler = async (n) => void got.push(n);
    const r = await mcp.callTool({ name: 'agent_send', arguments: { agent_id: 'ada', message: 'look in the graph' } });
    expect(r.isError).toBeFalsy();
    expect(got).toEqual([]);
  });

  it("cancelling the call cancels the agent's turn in the daemon; the agent answers the next message", async () => {
    const events = await collect(d.client, ['agent:turn_started', 'agent:error']);
    const ac = new AbortController();
    const call = mcp.callTool(
      { name: 'agent_send', arguments: { agent_id: 'ada', message: 'wait forever' } },
      undefined,
      { signal: ac.signal },
    );
    const started = await waitFor(() => events.find((e) => e.event === 'agent:turn_started'), 10_000, 'turn start');
    await waitFor(() => api.inFlight() > 0, 10_000, 'the model call');
    ac.abort();
    await expect(call).rejects.toThrow();
    const failed = await waitFor(
      () => events.find((e) => e.event === 'agent:error' && e.data.turn_id === started.data.turn_id),
      10_000,
      'agent:error',
    );
    expect(failed.data.code).toBe('CANCELLED');
    await waitFor(() => api.inFlight() === 0, 10_000, 'the model call aborted');
    const info = await d.client.request<{ status: string; turns: Array<{ turn_id: string; status: string }> }>(
      'agent:info',
      { agent_id: 'ada' },
    );
    expect(info.status).toBe('idle');
    expect(info.turns.find((t) => t.turn_id === started.data.turn_id)?.status).toBe('cancelled');
    const next = await mcp.callTool({ name: 'agent_send', arguments: { agent_id: 'ada', message: 'hello again' } });
    expect((next.structuredContent as { reply: string }).reply).toBe('echo: hello again');
  });
});

describeDocker('daemon-control mcp: sandbox runs', () => {
  it("streams a run's output as progress", async () => {
    const notes: string[] = [];
    const code = 'import time\nfor i in range(3):\n    print(f"line {i}", flush=True)\n    time.sleep(0.3)\n';
    const r = await mcp.callTool({ name: 'sandbox_exec', arguments: { language: 'python', code } }, undefined, {
      onprogress: (p) => notes.push(p.message ?? ''),
      timeout: 120_000,
    });
    expect((r.structuredContent as { stdout: string }).stdout).toBe('line 0\nline 1\nline 2\n');
    expect(notes.join('')).toBe('line 0\nline 1\nline 2\n');
    expect(notes.length).toBeGreaterThan(1);
  }, 120_000);

  it('cancelling the call kills the run', async () => {
    const events = await collect(d.client, ['sandbox:exec_finished']);
    const notes: string[] = [];
    const ac = new AbortController();
    const call = mcp.callTool(
      {
        name: 'sandbox_exec',
        arguments: {
          language: 'python',
          code: 'import time\nprint("started", flush=True)\ntime.sleep(120)\n',
          timeout_s: 300,
        },
      },
      undefined,
      {
        signal: ac.signal,
        onprogress: (p) => notes.push(p.message ?? ''),
        timeout: 120_000,
      },
    );
    await waitFor(() => notes.includes('started\n'), 60_000, 'the run to start');
    ac.abort();
    await expect(call).rejects.toThrow();
    const fin = await waitFor(() => events.find((e) => e.event === 'sandbox:exec_finished'), 20_000, 'the run to end');
    expect(fin.data.cancelled).toBe(true);
    expect(Number(fin.data.duration_ms)).toBeLessThan(60_000);
  }, 120_000);
});

describe('daemon-control mcp: resources', () => {
  it('lists KG nodes and agent transcripts, and reads them', async () => {
    const templates = (await mcp.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate);
    expect(templates).toEqual([
      'agentd://kg/node/{id}',
      'agentd://agent/{agent_id}/transcript',
      'agentd://workflow/run/{run_id}',
    ]);
    const uris = (await mcp.listResources()).resources.map((r) => r.uri);
    expect(uris).toContain('agentd://kg/node/n1');
    expect(uris).toContain('agentd://agent/ada/transcript');
    const node = await mcp.readResource({ uri: 'agentd://kg/node/n1' });
    expect(JSON.parse(contentText(node))).toEqual({
      node: { id: 'n1', label: 'Concept', properties: { name: 'attention' } },
    });
    const t = contentText(await mcp.readResource({ uri: 'agentd://agent/ada/transcript' }));
    expect(t).toMatch(/^# Agent ada/);
    expect(t).toContain('## user\n\nlook in the graph');
    expect(t).toContain('> **tool call** `kg_query` `{"label":"Concept"}`');
    expect(t).toContain('## assistant\n\nThe graph has node n1.');
  });

  it("reading what does not exist is the spec's resource-not-found error, with the code", async () => {
    await expect(mcp.readResource({ uri: 'agentd://kg/node/missing' })).rejects.toThrow(/-32002.*NOT_FOUND/);
    await expect(mcp.readResource({ uri: 'agentd://agent/nobody/transcript' })).rejects.toThrow(/-32002.*NOT_FOUND/);
  });
});
