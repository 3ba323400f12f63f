/**
 * `daemon-control mcp` under a client we did not write: the Python `mcp` package from PyPI, in the
 * virtualenv `.cache/mcp-venv` that .ci/run provisions. Skipped locally without it (with the command
 * that makes it); with CI=true a missing venv is a failure.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IN_CI, ROOT, startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import { agentConfig, KEY, toolUse } from '../agent/helpers.js';
import { DAEMON_CONTROL, daemonEnv } from './helpers.js';

const PYTHON = path.join(ROOT, '.cache', 'mcp-venv', 'bin', 'python');
const missing = fs.existsSync(PYTHON)
  ? null
  : `no ${PYTHON}; make it with: python3 -m venv .cache/mcp-venv && .cache/mcp-venv/bin/pip install mcp`;

function runPython(env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(PYTHON, [path.join(ROOT, 'test', 'mcp', 'python_client.py'), DAEMON_CONTROL], { env, cwd: ROOT });
    let out = '';
    let err = '';
    p.stdout.on('data', (b) => (out += b));
    p.stderr.on('data', (b) => (err += b));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

const suite = missing && !IN_CI ? describe.skip : describe;
if (missing && !IN_CI) console.warn(`[skip] python MCP client: ${missing}`);

suite('daemon-control mcp under the Python mcp package', () => {
  let api: MessagesApiServer;
  let d: DaemonHandle;

  beforeAll(async () => {
    api = await startMessagesApiServer();
    api.setHandler((req) => {
      const msgs = req.body.messages as Array<{ content: unknown }>;
      const last = msgs[msgs.length - 1]!.content;
      if (Array.isArray(last) && last.some((b: { type: string }) => b.type === 'tool_result'))
        return { text: 'Found py1.', chunkChars: 2 };
      return toolUse('kg_query', { label: 'Concept' });
    });
    d = await startDaemon({ env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY }, config: agentConfig() });
    await d.client.request('agent:spawn', { agent_id: 'py', tools: ['kg_query'], stream: true });
  }, 60_000);

  afterAll(async () => {
    await d?.stop();
    await api?.close();
  });

  it('lists the tools with their schemas, calls them, gets typed errors and progress, reads a resource', async () => {
    if (missing) throw new Error(missing);
    const r = await runPython(daemonEnv(d));
    expect(r.err.includes('Traceback') ? r.err : '').toBe('');
    expect(r.code).toBe(0);
    const got = JSON.parse(r.out.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(got.server).toBe('agentd');
    expect(got.tools).toContain('agent_send');
    expect(got.tools).toContain('kg_add_nodes');
    expect(got.tools).not.toContain('system_shutdown');
    expect((got.kg_add_nodes_schema as { required: string[] }).required).toEqual(['nodes']);
    expect(got.added).toEqual({ ids: ['py1'], created: 1, updated: 0 });
    expect(got.got).toEqual({ node: { id: 'py1', label: 'Concept', properties: { from: 'python' } } });
    expect(got.missing).toEqual({ is_error: true, text: expect.stringMatching(/^NOT_FOUND: /) });
    expect((got.turn as { reply: string }).reply).toBe('Found py1.');
    expect((got.progress as string[])[0]).toMatch(/^→ kg_query/);
    expect((got.progress as string[]).filter((m) => !/^[→←]/.test(m)).join('')).toBe('Found py1.');
    expect(JSON.parse(got.resource as string)).toEqual(got.got);
  }, 60_000);
});
