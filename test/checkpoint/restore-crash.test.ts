/**
 * A full restore killed part-way (SIGKILL) ends in one state, never a mix. The kill happens at a
 * point the test holds the daemon at and observes in the restore journal in agentd.db, not after a
 * sleep:
 *  - while the restore waits for work in flight to finish (a model call the test keeps hanging),
 *    journal "stopping": nothing was changed, and the next start keeps the state as it was;
 *  - while it puts the graph back (the test holds the live kg.db's write lock), journal "applying",
 *    with the old tables and the old graph still on disk: the next start finishes the restore.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import type { DaemonHandle } from '../helpers/daemon-process.js';
import { openDb, waitFor } from './helpers.js';
import { observe, startFull } from './full-helpers.js';

const phase = (home: string): string | null => {
  const db = openDb(home);
  try {
    return (
      (
        db.prepare('SELECT phase FROM checkpoint_restores ORDER BY id DESC LIMIT 1').get() as
          { phase: string } | undefined
      )?.phase ?? null
    );
  } finally {
    db.close();
  }
};

/** What is on disk, read straight from the files of a daemon that is not running. */
function onDisk(home: string): { agents: string[]; nodes: string[] } {
  const db = openDb(home);
  const kg = new Database(path.join(home, 'db', 'kg.db'), { readonly: true });
  try {
    return {
      agents: (
        db.prepare('SELECT agent_id FROM agent_agents ORDER BY agent_id').all() as Array<{ agent_id: string }>
      ).map((r) => r.agent_id),
      nodes: (kg.prepare('SELECT id FROM kg_nodes ORDER BY id').all() as Array<{ id: string }>).map((r) => r.id),
    };
  } finally {
    db.close();
    kg.close();
  }
}

describe('SIGKILL in the middle of a full restore', () => {
  let api: MessagesApiServer;
  let d: DaemonHandle | null = null;
  const checkpoint = { restore_stop_timeout_ms: 120_000, lock_timeout_ms: 120_000 };

  beforeAll(async () => {
    api = await startMessagesApiServer();
  });
  afterAll(async () => {
    await d?.stop();
    await api?.close();
  });

  /** A state A saved in full, then a state B; answers the checkpoint and what each state looks like. */
  async function twoStates(): Promise<{ id: number; a: Record<string, unknown>; b: Record<string, unknown> }> {
    ({ d } = await startFull({ api, sandbox: false, checkpoint }));
    const rq = (event: string, data: Record<string, unknown>) => d!.client.request(event, data, { timeoutMs: 60_000 });
    await rq('agent:spawn', { agent_id: 'alice', system: 'A' });
    await rq('kg:add_nodes', { nodes: [{ id: 'n1', label: 'Concept' }] });
    await rq('memo:put', { values: { a: 1 } });
    const a = await observe(d!.client);
    const id = ((await rq('checkpoint:save', { scope: 'full' })) as { checkpoint_id: number }).checkpoint_id;
    await rq('agent:spawn', { agent_id: 'bob', system: 'B' });
    await rq('kg:add_nodes', { nodes: [{ id: 'n2', label: 'Concept' }] });
    await rq('memo:put', { values: { b: 2 } });
    // In-memory state survives a kill -9 as of the last checkpoint: make B's the last one.
    await rq('checkpoint:save', {});
    return { id, a, b: await observe(d!.client) };
  }

  it('killed while work in flight finishes ("stopping"): the state stays as it was', async () => {
    const { id, b } = await twoStates();
    // A model call that does not return until the test lets it: the restore waits for it, as shutdown would.
    api.setHandler(() => ({ kind: 'hang' }));
    void d!.client.request('completion:async', { prompt: 'slow' }).catch(() => undefined);
    await waitFor(() => api.inFlight() > 0, 30_000, 'the model call');
    const restore = d!.client
      .request('checkpoint:restore', { checkpoint_id: id }, { timeoutMs: 300_000 })
      .catch((e: unknown) => e);
    await waitFor(() => phase(d!.home) === 'stopping', 60_000, 'journal phase stopping');
    await d!.kill('SIGKILL');
    await restore;
    api.setHandler(null);
    const home = d!.home;
    expect(onDisk(home)).toEqual({ agents: ['alice', 'bob'], nodes: ['n1', 'n2'] });
    ({ d } = await startFull({ api, home, sandbox: false, checkpoint }));
    expect(await observe(d.client)).toEqual(b);
    expect(phase(home)).toBe('abandoned');
    await d.stop();
    d = null;
  }, 300_000);

  it('killed while the graph is put back ("applying"): the next start finishes the restore', async () => {
    const { id, a } = await twoStates();
    const home = d!.home;
    // Hold the live graph file's write lock: the restore gets past its journal's "applying" and waits here.
    const kg = new Database(path.join(home, 'db', 'kg.db'));
    kg.exec('BEGIN IMMEDIATE');
    const restore = d!.client
      .request('checkpoint:restore', { checkpoint_id: id }, { timeoutMs: 300_000 })
      .catch((e: unknown) => e);
    await waitFor(() => phase(home) === 'applying', 60_000, 'journal phase applying');
    await d!.kill('SIGKILL');
    await restore;
    kg.exec('ROLLBACK');
    kg.close();
    // On disk now: the old tables, the old graph, and a journal that says a restore was under way.
    expect(onDisk(home)).toEqual({ agents: ['alice', 'bob'], nodes: ['n1', 'n2'] });
    ({ d } = await startFull({ api, home, sandbox: false, checkpoint }));
    expect(await observe(d.client)).toEqual(a);
    expect(phase(home)).toBe('done');
    const st = await d.client.request<{ head_id: number; boot: { restored: Record<string, number> } }>(
      'checkpoint:status',
    );
    // The plugins' in-memory parts came from the restored checkpoint (through a copy made as the restore finished).
    expect(Object.keys(st.boot.restored).sort()).toEqual(['flaky', 'memo']);
  }, 300_000);
});
