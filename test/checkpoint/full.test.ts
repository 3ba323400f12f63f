/**
 * Full checkpoints on a live daemon with every stateful plugin: a full save, changes in each of them,
 * a diff that names exactly those changes, and a restore that undoes every one of them except the
 * spend (the budget ledger and the completion journal's outcomes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventFrame } from '../../client/protocol.js';
import type { MessagesApiServer } from '../fixtures/messages-api-server.js';
import type { DaemonHandle } from '../helpers/daemon-process.js';
import { expectCode, record } from './helpers.js';
import { observe, spend, startFull, withSandbox } from './full-helpers.js';

/** A one-step workflow: a run to roll back. */
const PROBE = { name: 'probe', steps: [{ id: 'count', event: 'kg:stats' }] };

interface EntityDiff {
  added: number;
  removed: number;
  changed: number;
  ids: { added: unknown[]; removed: unknown[]; changed: unknown[] };
}

describe('full checkpoints', () => {
  let d: DaemonHandle;
  let api: MessagesApiServer;
  let events: EventFrame[];
  const rq = <T = Record<string, unknown>>(event: string, data: Record<string, unknown> = {}) =>
    d.client.request<T>(event, data, { timeoutMs: 120_000 });
  const sessions = ['sess-1', 'sess-2'];

  beforeAll(async () => {
    ({ d, api } = await startFull());
    events = await record(d.client, ['checkpoint:*']);
  }, 120_000);
  afterAll(async () => {
    await d?.stop();
    await api?.close();
  });

  let saved: Record<string, unknown>;
  let before: Record<string, unknown>;
  let afterTurn = '';
  let full = 0;

  it('takes a full checkpoint online that says what it covers and what it never rolls back', async () => {
    await rq('agent:spawn', { agent_id: 'alice', system: 'You are Alice.' });
    await rq('agent:send', { agent_id: 'alice', message: 'hello' });
    await rq('completion:request', { prompt: 'first', session_id: 'sess-1' });
    await rq('kg:add_nodes', {
      nodes: [
        { id: 'n1', label: 'Concept', properties: { v: 1 } },
        { id: 'n2', label: 'Concept' },
      ],
    });
    await rq('kg:add_edges', { edges: [{ from: 'n1', to: 'n2', type: 'RELATES_TO' }] });
    await rq('memo:put', { values: { a: 1 } });
    await rq('notes:put', { id: 'n-1', text: 'first' });
    await rq('workflow:start', { definition: PROBE, run_id: 'r-before', wait: true });
    if (withSandbox) {
      await rq('sandbox:create', { session_id: 'box' });
      await rq('sandbox:exec', { session_id: 'box', language: 'bash', code: 'echo before > /workspace/f.txt' });
    }
    before = await observe(d.client, sessions);

    saved = await rq('checkpoint:save', { label: 'before-experiment', scope: 'full' });
    full = saved.checkpoint_id as number;
    expect(saved).toMatchObject({ scope: 'full', label: 'before-experiment', complete: true });
    const f = saved.full as Record<string, unknown>;
    expect(f.online).toBe(true);
    expect(f.bytes).toBeGreaterThan(0);
    expect(f.never_rolled_back).toMatch(/spent stays spent/);
    const kept = f.kept as Record<string, { tables: string[]; reason: string }>;
    expect(Object.keys(kept).sort()).toEqual(['budget', 'completion']);
    expect(kept.budget!.tables).toContain('budget_ledger');
    expect(kept.completion!.tables).toEqual(['completion_requests']);
    const covered = f.covered as Record<string, { tables: string[]; files: string[]; dirs: string[] }>;
    expect(covered.agent!.tables).toEqual(
      expect.arrayContaining(['agent_agents', 'agent_messages', 'agent_turns', 'agent_inbox']),
    );
    expect(covered.completion!.tables).toEqual(['completion_conversations', 'completion_messages']);
    expect(covered.kg!.files).toEqual(['kg']);
    expect(covered.notes!.tables).toEqual(['notes_items']);
    expect(covered.workflow!.tables).toEqual(expect.arrayContaining(['workflow_runs', 'workflow_steps']));
    // A full-text index is not copied row by row: its triggers rebuild it from the table it indexes.
    expect(covered.trace!.tables).toContain('trace_traces');
    expect(covered.trace!.tables.filter((t) => t.startsWith('trace_fts') || t.startsWith('trace_vocab'))).toEqual([]);
    if (withSandbox) expect(covered.sandbox!.dirs).toEqual(['sessions']);
    const list = await rq<{ checkpoints: Array<{ id: number; scope: string; full_bytes?: number }> }>(
      'checkpoint:list',
    );
    expect(list.checkpoints.find((c) => c.id === full)).toMatchObject({ scope: 'full' });
  });

  it('lists exactly what changed since, kind by kind', async () => {
    await rq('agent:spawn', { agent_id: 'bob', system: 'You are Bob.' });
    const t = await rq<{ turn_id: string }>('agent:send', { agent_id: 'alice', message: 'again' });
    afterTurn = t.turn_id;
    await rq('completion:request', { prompt: 'second', session_id: 'sess-1' });
    await rq('completion:request', { prompt: 'new', session_id: 'sess-2' });
    await rq('kg:add_nodes', {
      nodes: [
        { id: 'n3', label: 'Finding' },
        { id: 'n1', label: 'Concept', properties: { v: 2 } },
      ],
    });
    await rq('kg:add_edges', { edges: [{ from: 'n2', to: 'n3', type: 'SUPPORTS' }] });
    await rq('kg:delete', { edge: { from: 'n1', to: 'n2', type: 'RELATES_TO' } });
    await rq('memo:put', { values: { b: 2 } });
    await rq('notes:put', { id: 'n-1', text: 'edited' });
    await rq('notes:put', { id: 'n-2', text: 'second' });
    await rq('workflow:start', { definition: PROBE, run_id: 'r-after', wait: true });
    if (withSandbox) {
      await rq('sandbox:exec', { session_id: 'box', language: 'bash', code: 'echo after > /workspace/f.txt' });
      await rq('sandbox:create', { session_id: 'box2' });
    }
    const diff = await rq<{ changes: Record<string, EntityDiff> }>('checkpoint:diff', { from: full });
    const c = diff.changes;
    expect(c.agents).toMatchObject({
      added: 1,
      removed: 0,
      changed: 1,
      ids: { added: ['bob'], removed: [], changed: ['alice'] },
    });
    expect(c.turns).toMatchObject({ added: 1, removed: 0, changed: 0, ids: { added: [afterTurn] } });
    expect(c.conversations).toMatchObject({
      added: 1,
      removed: 0,
      changed: 1,
      ids: { added: ['sess-2'], changed: ['sess-1'] },
    });
    expect(c.nodes).toMatchObject({ added: 1, removed: 0, changed: 1, ids: { added: ['n3'], changed: ['n1'] } });
    expect(c.edges).toMatchObject({
      added: 1,
      removed: 1,
      changed: 0,
      ids: {
        added: [{ from: 'n2', type: 'SUPPORTS', to: 'n3' }],
        removed: [{ from: 'n1', type: 'RELATES_TO', to: 'n2' }],
      },
    });
    expect(c.notes).toMatchObject({ added: 1, removed: 0, changed: 1, ids: { added: ['n-2'], changed: ['n-1'] } });
    expect(c.runs).toMatchObject({ added: 1, removed: 0, changed: 0, ids: { added: ['r-after'] } });
    expect(c.traces).toMatchObject({ added: 0, removed: 0, changed: 0 });
    expect(Object.keys(c).sort()).toEqual([
      'agents',
      'conversations',
      'edges',
      'nodes',
      'notes',
      'runs',
      'traces',
      'turns',
    ]);
  });

  it('restores: every change is gone except the spend, and the answer says what changed', async () => {
    const paid = await spend(d.client);
    expect(paid.usd).toBeGreaterThan(0);
    const changed = await observe(d.client, sessions);
    expect(changed).not.toEqual(before);
    const r = await rq<Record<string, unknown>>('checkpoint:restore', { checkpoint_id: full });
    expect(r).toMatchObject({ checkpoint_id: full, scope: 'full', failed: {} });
    expect((r.restarted as string[]).sort()).toEqual(
      ['agent', 'completion', 'kg', 'notes', 'trace', 'workflow', ...(withSandbox ? ['sandbox'] : [])].sort(),
    );
    expect((r.restored as string[]).sort()).toEqual(['flaky', 'memo']);
    expect(r.never_rolled_back).toMatch(/spent stays spent/);
    // What the restore changed is the diff read the other way round.
    const ch = r.changes as Record<string, EntityDiff>;
    expect(ch.agents).toMatchObject({
      added: 0,
      removed: 1,
      changed: 1,
      ids: { removed: ['bob'], changed: ['alice'] },
    });
    expect(ch.nodes).toMatchObject({ removed: 1, changed: 1, ids: { removed: ['n3'] } });

    expect(await observe(d.client, sessions)).toEqual(before);
    // Spend stays spent: the ledger and the outcome of a call made after the save are still there.
    expect(await spend(d.client)).toEqual(paid);
    const ledger = await rq<{ entries: Array<{ request_id: string | null }> }>('budget:ledger', { limit: 1000 });
    const paidAfter = ledger.entries.find((e) => e.request_id?.includes(afterTurn))?.request_id;
    expect(paidAfter).toBeTruthy();
    expect(await rq('completion:status', { request_id: paidAfter })).toMatchObject({ status: 'completed' });
    if (withSandbox) {
      const out = await rq<{ stdout: string }>('sandbox:exec', {
        session_id: 'box',
        language: 'bash',
        code: 'cat /workspace/f.txt',
      });
      expect(out.stdout.trim()).toBe('before');
      expect(await expectCode(rq('sandbox:exec', { session_id: 'box2', language: 'bash', code: 'true' }))).toBe(
        'NOT_FOUND',
      );
    }
    const restored = events.find((e) => e.event === 'checkpoint:restored' && e.data.live === true);
    expect(restored?.data).toMatchObject({ checkpoint_id: full, scope: 'full' });
    // The daemon keeps working on the restored state.
    await rq('agent:send', { agent_id: 'alice', message: 'after the restore' });
    const status = await rq<{ head_id: number; last_restore: { phase: string; checkpoint_id: number } }>(
      'checkpoint:status',
    );
    expect(status.last_restore).toMatchObject({ phase: 'done', checkpoint_id: full });
  });

  it('refuses what it cannot do with typed errors, changing nothing', async () => {
    const state = await rq<{ checkpoint_id: number }>('checkpoint:save', {});
    expect(await expectCode(rq('checkpoint:diff', { from: state.checkpoint_id }))).toBe('CONFLICT');
    expect(
      await expectCode(rq('checkpoint:fork', { checkpoint_id: state.checkpoint_id, home: '/tmp/agentd-never-made' })),
    ).toBe('CONFLICT');
    expect(await expectCode(rq('checkpoint:diff', { from: 999_999 }))).toBe('NOT_FOUND');
    expect(await expectCode(rq('checkpoint:fork', { checkpoint_id: full, home: 'relative/path' }))).toBe(
      'INVALID_DATA',
    );
    expect(await expectCode(rq('checkpoint:fork', { checkpoint_id: full, home: d.home }))).toBe('INVALID_DATA');
    expect(await expectCode(rq('checkpoint:save', { scope: 'everything' }))).toBe('INVALID_DATA');
  });
});
