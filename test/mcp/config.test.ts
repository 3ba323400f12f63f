/**
 * Bad `mcp:` sections are refused with a message that says what is wrong and where, through the
 * same check the plugin host applies at start (parseSection); at start the plugin fails with that
 * reason and the rest of the daemon runs.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { parseSection } from '../../daemon/config.js';
import { configSchema } from '../../plugins/mcp/config.js';
import { exposed, toolNameOf } from '../../plugins/mcp/expose.js';
import { providerProblem, splitModelToolName } from '../../plugins/mcp/model-tools.js';
import { startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';

const check = (servers: unknown, extra: Record<string, unknown> = {}) =>
  parseSection('mcp', configSchema, { servers, ...extra });

describe('mcp config', () => {
  it('takes stdio and HTTP servers, with defaults', () => {
    const r = check({
      fs: { command: 'npx', args: ['-y', 'x'] },
      web: { url: 'https://example.com/mcp', headers: { Authorization: 'Bearer ${TOKEN}' } },
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.data.servers.fs).toMatchObject({ command: 'npx', args: ['-y', 'x'], env: {} });
    expect(r.data.expose).toEqual(['agent', 'workflow', 'sandbox:exec', 'kg', 'budget:status', 'completion:request']);
    expect(r.data.call_timeout_ms).toBe(60_000);
  });

  it.each([
    [{ x: {} }, 'servers.x: give command (a stdio server) or url (Streamable HTTP)'],
    [
      { x: { command: 'a', url: 'http://h/mcp' } },
      'servers.x: give command (a stdio server) or url (Streamable HTTP), not both',
    ],
    [{ x: { comand: 'node' } }, 'servers.x.comand: unknown key "comand" (did you mean command?)'],
    [{ x: { url: 'ftp://h/mcp' } }, 'servers.x.url: not an http(s) URL: "ftp://h/mcp"'],
    [{ x: { url: 'not a url' } }, 'servers.x.url: not an http(s) URL'],
    [
      { x: { url: 'http://h/mcp', env: { A: 'b' } } },
      'servers.x.env: args and env are for stdio servers; this one has a url',
    ],
    [
      { x: { command: 'node', headers: { A: 'b' } } },
      'servers.x.headers: headers are for HTTP servers; this one has a command',
    ],
    [{ x: { command: '' } }, 'servers.x.command:'],
    [{ x: { command: 'node', args: 'server.js' } }, 'servers.x.args:'],
    [{ x: { command: 'node', timeout_ms: 5 } }, 'servers.x.timeout_ms:'],
    [{ a__b: { command: 'node' } }, 'no "__": the model sees <server>__<tool>'],
    [['node'], 'servers:'],
  ])('refuses %j, saying %j', (servers, message) => {
    const r = check(servers);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(message);
  });

  it('refuses an expose entry that is not a namespace, an event or ns:*', () => {
    const r = check({}, { expose: ['kg', 'Agent Send'] });
    expect(!r.ok && r.reason).toContain('expose.1: a namespace ("kg"), an event ("sandbox:exec") or "ns:*"');
  });
});

describe('exposure and model names', () => {
  it.each([
    ['kg:get', ['kg'], true],
    ['kg:get', ['kg:*'], true],
    ['kg:get', ['kg:find'], false],
    ['system:shutdown', ['system'], false],
    ['system:shutdown', ['system:*'], false],
    ['system:shutdown', ['system:shutdown'], true],
    ['plugin:reload', ['plugin'], false],
    ['monitor:subscribe', ['monitor:subscribe'], false],
    ['mcp:invoke', ['mcp'], false],
    ['mcp:call', ['mcp'], true],
  ] as const)('%s with expose %j: %s', (event, expose, want) => {
    expect(exposed(event, expose)).toBe(want);
  });

  it("names tools <ns>_<action> and models' tools <server>__<tool>", () => {
    expect(toolNameOf('kg:add_nodes')).toBe('kg_add_nodes');
    expect(splitModelToolName('fs__read_text_file')).toEqual({ server: 'fs', tool: 'read_text_file' });
    expect(splitModelToolName('my-server__a__b')).toEqual({ server: 'my-server', tool: 'a__b' });
    expect(splitModelToolName('kg_query')).toBeNull();
  });

  it.each([
    ['fs__read', { type: 'object' }, null],
    ['fs__a.b', { type: 'object' }, /not 1-64 letters/],
    [`fs__${'x'.repeat(61)}`, { type: 'object' }, /not 1-64 letters/],
    ['fs__x', { type: 'string' }, /type is "string", not "object"/],
    ['fs__x', { type: 'object', oneOf: [] }, /oneOf at the top level/],
  ])('%s %j: %s', (name, schema, want) => {
    const p = providerProblem(name, schema);
    if (want === null) expect(p).toBeNull();
    else expect(p).toMatch(want);
  });
});

describe('a bad mcp section at start', () => {
  let d: DaemonHandle;
  afterAll(async () => void (await d?.stop()));

  it('fails the mcp plugin with the reason; the daemon and the other plugins run', async () => {
    d = await startDaemon({
      config: 'daemon:\n  disabled_plugins: [sandbox]\nmcp:\n  servers:\n    fs: {comand: node}\n',
    });
    const plugins = (
      await d.client.request<{ plugins: Array<{ name: string; status: string; reason: string | null }> }>('plugin:list')
    ).plugins;
    const mcp = plugins.find((p) => p.name === 'mcp')!;
    expect(mcp.status).toBe('failed');
    expect(mcp.reason).toContain('servers.fs.comand: unknown key "comand" (did you mean command?)');
    expect(plugins.find((p) => p.name === 'kg')!.status).toBe('ok');
    const e = await d.client.request('mcp:servers').catch((x: { code: string }) => x);
    expect((e as { code: string }).code).toBe('UNAVAILABLE');
  });
});
