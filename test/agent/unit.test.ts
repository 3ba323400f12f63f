/** The agent plugin's pure parts, without a daemon: profiles, message windows, prompts, tool refusals. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { promptFor } from '../../plugins/agent/converse.js';
import { buildMessages, toolUsesOf } from '../../plugins/agent/history.js';
import { ProfileStore, type ProfileChange } from '../../plugins/agent/profiles.js';
import { runTool, toolDefinitions, type ToolEnv } from '../../plugins/agent/tools.js';
import { DaemonError } from '../../client/errors.js';
import type { StoredMessage } from '../../plugins/agent/store.js';
import { tempHome } from '../helpers/daemon-process.js';

describe('ProfileStore', () => {
  it('loads valid files, reports invalid ones with the reason, and lets a later directory win', async () => {
    const root = tempHome('agentd-prof-unit-');
    const a = path.join(root, 'a');
    const b = path.join(root, 'b');
    fs.mkdirSync(a);
    fs.mkdirSync(b);
    fs.writeFileSync(path.join(a, 'writer.yaml'), 'system: one\ntools: [kg_add]\n');
    fs.writeFileSync(path.join(b, 'writer.yml'), 'system: two\n');
    fs.writeFileSync(path.join(a, 'named.yaml'), 'name: other-name\nsystem: x\n');
    fs.writeFileSync(path.join(a, 'bad-tool.yaml'), 'tools: [teleport]\n');
    fs.writeFileSync(path.join(a, 'bad-yaml.yaml'), 'system: "unclosed\n');
    fs.writeFileSync(path.join(a, 'extra-key.yaml'), 'systme: typo\n');
    fs.writeFileSync(path.join(a, 'bad-limit.yaml'), 'limits: {max_turns: -1}\n');
    fs.writeFileSync(path.join(a, 'Upper Case.yaml'), 'system: x\n');
    fs.writeFileSync(path.join(a, 'notes.txt'), 'ignored');
    const changes: ProfileChange[] = [];
    const s = new ProfileStore([a, b], (c) => changes.push(c));
    await s.loadAll();
    expect(s.list().map((p) => p.name)).toEqual(['other-name', 'writer']);
    expect(s.get('writer')?.system).toBe('two');
    expect(
      s
        .invalid()
        .map((i) => path.basename(i.file))
        .sort(),
    ).toEqual(['Upper Case.yaml', 'bad-limit.yaml', 'bad-tool.yaml', 'bad-yaml.yaml', 'extra-key.yaml']);
    expect(s.invalid().find((i) => i.file.endsWith('bad-tool.yaml'))!.error).toMatch(/^tools\.0: /);
    expect(changes).toEqual([]); // the initial load is reported by the plugin, not as changes

    fs.writeFileSync(path.join(b, 'writer.yml'), 'tools: [nope]\n');
    expect(s.loadFile(path.join(b, 'writer.yml'))).toMatchObject({ change: 'invalid', name: 'writer' });
    expect(s.get('writer')?.system).toBe('one'); // the other directory's profile shows through
    fs.unlinkSync(path.join(b, 'writer.yml'));
    expect(s.loadFile(path.join(b, 'writer.yml'))).toMatchObject({ change: 'removed' });
    expect(changes.map((c) => c.change)).toEqual(['invalid', 'removed']);
  });

  it('a start need not wait for the watcher: what changed before its first scan is caught up, and only that', async () => {
    const dir = path.join(tempHome('agentd-prof-catchup-'), 'p');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'same.yaml'), 'system: unchanged\n');
    fs.writeFileSync(path.join(dir, 'edited.yaml'), 'system: before\n');
    fs.writeFileSync(path.join(dir, 'gone.yaml'), 'system: x\n');
    const changes: ProfileChange[] = [];
    const s = new ProfileStore([dir], (c) => changes.push(c));
    await s.loadAll();
    // Edits in the window between loading and the watcher being ready.
    fs.writeFileSync(path.join(dir, 'edited.yaml'), 'system: after\n');
    fs.writeFileSync(path.join(dir, 'added.yaml'), 'system: new\n');
    fs.unlinkSync(path.join(dir, 'gone.yaml'));
    await s.watch();
    await s.close();
    expect(s.get('edited')?.system).toBe('after');
    expect(s.get('added')?.system).toBe('new');
    expect(s.get('gone')).toBeUndefined();
    expect(changes.map((c) => `${c.change}:${path.basename(c.file)}`).sort()).toEqual([
      'loaded:added.yaml',
      'loaded:edited.yaml',
      'removed:gone.yaml',
    ]);
  });
});

describe('buildMessages', () => {
  const u = (content: StoredMessage['content']): StoredMessage => ({ role: 'user', content });
  const asst = (content: StoredMessage['content']): StoredMessage => ({ role: 'assistant', content });
  const use = { type: 'tool_use', id: 't1', name: 'kg_query', input: {} };
  const result = { type: 'tool_result', tool_use_id: 't1', content: '{}' };

  it.each([
    ['starts at a user message', [asst('x'), u('a'), asst('b')], [u('a'), asst('b')]],
    [
      'never opens on a bare tool result (its tool_use fell out of the window)',
      [u([result]), asst('y'), u('next'), asst('z')],
      [u('next'), asst('z')],
    ],
    [
      'merges a user message after tool results (a turn that stopped at a limit)',
      [u('a'), asst([use]), u([result]), u('again')],
      [u('a'), asst([use]), u([result, { type: 'text', text: 'again' }])],
    ],
    ['keeps alternating history as it is', [u('a'), asst('b'), u('c')], [u('a'), asst('b'), u('c')]],
  ])('%s', (_name, input, want) => {
    expect(buildMessages(input as StoredMessage[])).toEqual(want);
  });

  it('drops the oldest messages past maxChars, realigning on a user message, but keeps the newest exchange', () => {
    const big = 'x'.repeat(1000);
    const h = [u(big), asst(big), u('a'), asst([use]), u([result]), asst('b'), u('c')];
    expect(buildMessages(h, 100)).toEqual([u('c')]);
    // 'a' and everything after fit; the bare tool result is never a window start.
    expect(buildMessages(h, 300).map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user']);
    expect(buildMessages(h, 300)[0]).toEqual(u('a'));
    expect(buildMessages(h)).toHaveLength(7);
    // A turn in flight (tool_use + tool_result) is kept whole however large.
    expect(buildMessages([u(big), u('go'), asst([use]), u([result])], 10)).toEqual([u('go'), asst([use]), u([result])]);
  });

  it('finds tool uses', () => {
    expect(toolUsesOf([{ type: 'text', text: 'x' }, use])).toEqual([{ id: 't1', name: 'kg_query', input: {} }]);
    expect(toolUsesOf('plain')).toEqual([]);
  });
});

describe('promptFor', () => {
  const t = [
    { round: 1, agent_id: 'a', text: 'A1', turn_id: 'x' },
    { round: 1, agent_id: 'b', text: 'B1', turn_id: 'y' },
    { round: 1, agent_id: 'c', text: 'C1', turn_id: 'z' },
  ];
  it('gives the topic to a first-time speaker and what the others said since a speaker last spoke', () => {
    expect(promptFor('tea?', [], 'a', 0)).toContain('Conversation topic: tea?');
    expect(promptFor('tea?', [], 'a', 0)).toContain('You speak first.');
    const second = promptFor('tea?', t.slice(0, 1), 'b', 1);
    expect(second).toContain('Conversation topic: tea?');
    expect(second).toContain('[a]: A1');
    const again = promptFor('tea?', t, 'a', 3);
    expect(again).not.toContain('Conversation topic');
    expect(again).not.toContain('A1');
    expect(again).toContain('[b]: B1\n\n[c]: C1');
  });
});

describe('runTool', () => {
  const calls: Array<[string, Record<string, unknown>]> = [];
  const env = (over: Partial<ToolEnv> = {}): ToolEnv => ({
    agentId: 'ag',
    allowed: ['kg_add', 'kg_query', 'message_agent'],
    turnId: 't-1',
    toolUseId: 'tu-1',
    maxResultChars: 300,
    request: async (event, data) => {
      calls.push([event, data]);
      if (event === 'kg:add_nodes') return { ids: (data.nodes as Array<{ id: string }>).map((n) => n.id) } as never;
      return { nodes: Array.from({ length: 100 }, (_, i) => ({ id: `n${i}` })) } as never;
    },
    parentOf: () => undefined,
    ...over,
  });

  it.each([
    ['sandbox_exec', { language: 'python', code: 'x' }, 'NOT_ALLOWED'],
    ['teleport', {}, 'UNKNOWN_TOOL'],
    ['kg_query', { limit: 'lots' }, 'INVALID_INPUT'],
    ['kg_add', {}, 'INVALID_INPUT'],
    ['message_agent', { to: 'ag', content: 'me' }, 'CONFLICT'],
  ])('%s %j is refused with %s, and nothing is routed', async (name, input, code) => {
    calls.length = 0;
    const out = await runTool(name, input, env());
    expect(out.is_error).toBe(true);
    expect(out.error_code).toBe(code);
    expect(JSON.parse(out.content).error.code).toBe(code);
    expect(calls).toEqual([]);
  });

  it('derives stable ids for nodes without one (a resumed call does not duplicate them) and cuts long results', async () => {
    calls.length = 0;
    const a = await runTool('kg_add', { nodes: [{ label: 'Finding' }, { id: 'mine', label: 'Finding' }] }, env());
    const b = await runTool('kg_add', { nodes: [{ label: 'Finding' }, { id: 'mine', label: 'Finding' }] }, env());
    expect(a.content).toBe(b.content);
    expect(JSON.parse(a.content).node_ids[1]).toBe('mine');
    const q = await runTool('kg_query', { label: 'Finding' }, env());
    expect(q.content.length).toBeLessThan(400);
    expect(q.content).toContain('[cut: ');
  });

  it('marks a loop or an exhausted budget as fatal to the turn, other failures not', async () => {
    const failing = (code: 'LOOP_DETECTED' | 'NOT_FOUND') =>
      env({
        request: async () => {
          throw new DaemonError(code, 'no');
        },
      });
    expect((await runTool('message_agent', { to: 'b', content: 'hi' }, failing('LOOP_DETECTED'))).fatal?.code).toBe(
      'LOOP_DETECTED',
    );
    const nf = await runTool('kg_query', { id: 'x' }, failing('NOT_FOUND'));
    expect(nf).toMatchObject({ is_error: true, error_code: 'NOT_FOUND' });
    expect(nf.fatal).toBeUndefined();
    const gone = await runTool(
      'kg_query',
      { id: 'x' },
      env({
        request: async () => {
          throw new DaemonError('UNKNOWN_EVENT', 'no handler for "kg:neighbors"');
        },
      }),
    );
    expect(gone).toMatchObject({ is_error: true, error_code: 'UNAVAILABLE' });
    expect(JSON.parse(gone.content).error.message).toContain('not available on this daemon');
  });

  it('describes every tool to the model as a JSON Schema object', () => {
    const defs = toolDefinitions(['sandbox_exec', 'kg_add', 'kg_query', 'message_agent', 'spawn_agent']);
    for (const d of defs) {
      expect(d.input_schema).toMatchObject({ type: 'object' });
      expect(String(d.description).length).toBeGreaterThan(20);
      expect(d.input_schema).not.toHaveProperty('$schema');
    }
  });
});
