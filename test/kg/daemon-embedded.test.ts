/**
 * kg:* through the real socket on the embedded backend: the happy path, kg:changed, and every kind of
 * bad input from the issue answered with a typed error that changes nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonError } from '../../client/errors.js';
import { startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';

let d: DaemonHandle;

async function code(event: string, data: Record<string, unknown>): Promise<DaemonError> {
  try {
    await d.client.request(event, data);
  } catch (e) {
    expect(e).toBeInstanceOf(DaemonError);
    return e as DaemonError;
  }
  throw new Error(`${event} ${JSON.stringify(data).slice(0, 200)} succeeded but should have failed`);
}

beforeAll(async () => {
  d = await startDaemon({ config: 'kg:\n  backend: embedded\n  export_inline_max: 6\n', readyTimeoutMs: 60_000 });
  await d.client.request('kg:add_nodes', {
    nodes: [
      { id: 'p1', label: 'Paper', properties: { title: 'Attention', year: 2017 } },
      { id: 'p2', label: 'Paper', properties: { title: 'BERT', year: 2018 } },
      { id: 'c1', label: 'Concept', properties: { name: 'attention' } },
    ],
  });
  await d.client.request('kg:add_edges', {
    edges: [
      { from: 'p2', to: 'p1', type: 'CITES' },
      { from: 'p1', to: 'c1', type: 'MENTIONS' },
    ],
  });
});

afterAll(async () => {
  await d?.stop();
});

describe('kg on the embedded backend, through the socket', () => {
  it('stores the graph in <home>/db/kg.db', () => {
    expect(fs.existsSync(path.join(d.home, 'db', 'kg.db'))).toBe(true);
  });

  it('answers get, find, neighbors, path and stats', async () => {
    expect(await d.client.request('kg:get', { id: 'p1' })).toEqual({
      node: { id: 'p1', label: 'Paper', properties: { title: 'Attention', year: 2017 } },
    });
    const found = await d.client.request('kg:find', { label: 'Paper', where: { year: 2018 } });
    expect(found).toEqual({
      nodes: [{ id: 'p2', label: 'Paper', properties: { title: 'BERT', year: 2018 } }],
      next_cursor: null,
    });
    const n = (await d.client.request('kg:neighbors', { id: 'p2', depth: 2 })) as {
      nodes: Array<{ id: string; depth: number }>;
      truncated: boolean;
    };
    expect(n.nodes.map((x) => [x.id, x.depth])).toEqual([
      ['p1', 1],
      ['c1', 2],
    ]);
    const p = (await d.client.request('kg:path', { from: 'p2', to: 'c1' })) as {
      found: boolean;
      nodes: Array<{ id: string }>;
    };
    expect(p.found).toBe(true);
    expect(p.nodes.map((x) => x.id)).toEqual(['p2', 'p1', 'c1']);
    expect(await d.client.request('kg:stats', {})).toEqual({
      nodes: 3,
      edges: 2,
      labels: { Concept: 1, Paper: 2 },
      types: { CITES: 1, MENTIONS: 1 },
    });
  });

  it('emits kg:changed with counts', async () => {
    const c = await d.connect();
    try {
      let resolve!: (v: Record<string, unknown>) => void;
      const got = new Promise<Record<string, unknown>>((r) => (resolve = r));
      // Resolves once the daemon has acknowledged the subscription, so the event cannot be missed.
      await c.subscribe(['kg:changed'], (ev) => resolve(ev.data as Record<string, unknown>));
      await d.client.request('kg:add_nodes', {
        nodes: [
          { id: 'tmp1', label: 'Finding' },
          { id: 'p1', label: 'Paper', properties: { title: 'Attention', year: 2017 } },
        ],
      });
      expect(await got).toEqual({
        op: 'add_nodes',
        backend: 'embedded',
        nodes_created: 1,
        nodes_updated: 1,
        nodes_deleted: 0,
        edges_created: 0,
        edges_updated: 0,
        edges_deleted: 0,
      });
      await d.client.request('kg:delete', { id: 'tmp1' });
    } finally {
      await c.close();
    }
  });

  it('deletes an edge, then answers NOT_FOUND for it', async () => {
    await d.client.request('kg:add_nodes', {
      nodes: [
        { id: 'e1', label: 'Concept' },
        { id: 'e2', label: 'Concept' },
      ],
    });
    await d.client.request('kg:add_edges', { edges: [{ from: 'e1', to: 'e2', type: 'RELATES_TO' }] });
    expect(await d.client.request('kg:delete', { edge: { from: 'e1', to: 'e2', type: 'RELATES_TO' } })).toMatchObject({
      edges_deleted: 1,
    });
    expect((await code('kg:delete', { edge: { from: 'e1', to: 'e2', type: 'RELATES_TO' } })).code).toBe('NOT_FOUND');
    await d.client.request('kg:delete', { id: 'e1' });
    await d.client.request('kg:delete', { id: 'e2' });
  });

  it('exports inline and to a file, and imports the file back', async () => {
    const inline = (await d.client.request<Record<string, unknown>>('kg:export', { format: 'json' })) as {
      nodes: unknown[];
      edges: unknown[];
    };
    expect(inline.nodes).toHaveLength(3);
    expect(inline.edges).toHaveLength(2);
    const file = path.join(d.home, 'graph.jsonl');
    expect(await d.client.request('kg:export', { path: file })).toMatchObject({ path: file, nodes: 3, edges: 2 });
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({ format: 'agentd-kg', version: 1 });
    expect(lines).toHaveLength(6);
    expect(await d.client.request('kg:import', { path: file })).toEqual({
      nodes_created: 0,
      nodes_updated: 3,
      edges_created: 0,
      edges_updated: 2,
    });
    expect(
      await d.client.request<Record<string, unknown>>('kg:import', {
        graph: { nodes: inline.nodes, edges: inline.edges },
      }),
    ).toMatchObject({ nodes_updated: 3 });
  });

  it('kg:export does not overwrite unless asked, and never writes through a symbolic link', async () => {
    const file = path.join(d.home, 'keep.jsonl');
    fs.writeFileSync(file, 'precious\n');
    const e = await code('kg:export', { path: file });
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toMatch(/overwrite: true/);
    expect(fs.readFileSync(file, 'utf8')).toBe('precious\n');
    expect(await d.client.request('kg:export', { path: file, overwrite: true })).toMatchObject({
      path: file,
      nodes: 3,
    });
    expect(fs.readFileSync(file, 'utf8')).toMatch(/agentd-kg/);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);

    // A link to a file the daemon may write but its caller should not touch: refused, even with overwrite.
    const victim = path.join(d.home, 'victim.txt');
    fs.writeFileSync(victim, 'not yours\n');
    const link = path.join(d.home, 'link.jsonl');
    fs.symlinkSync(victim, link);
    for (const overwrite of [false, true]) {
      const r = await code('kg:export', { path: link, overwrite });
      expect(r.code).toBe('CONFLICT');
      expect(r.message).toMatch(/symbolic link/);
    }
    // A dangling link is not followed into creating its target either.
    const dangling = path.join(d.home, 'dangling.jsonl');
    fs.symlinkSync(path.join(d.home, 'created-through-link.jsonl'), dangling);
    expect((await code('kg:export', { path: dangling })).code).toBe('CONFLICT');
    expect(fs.existsSync(path.join(d.home, 'created-through-link.jsonl'))).toBe(false);
    expect(fs.readFileSync(victim, 'utf8')).toBe('not yours\n');
    // No temporary files left behind by the refusals.
    expect(fs.readdirSync(d.home).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses an inline export above kg.export_inline_max, pointing at path', async () => {
    await d.client.request('kg:add_nodes', {
      nodes: [
        { id: 'big1', label: 'Finding' },
        { id: 'big2', label: 'Finding' },
      ],
    });
    try {
      const e = await code('kg:export', {});
      expect(e.code).toBe('CONFLICT');
      expect(e.message).toMatch(/path/);
      expect(e.details).toMatchObject({ nodes: 5, edges: 2, inline_max: 6 });
      expect(await d.client.request('kg:export', { path: path.join(d.home, 'big.jsonl') })).toMatchObject({
        nodes: 5,
        edges: 2,
      });
    } finally {
      await d.client.request('kg:delete', { id: 'big1' });
      await d.client.request('kg:delete', { id: 'big2' });
    }
  });

  const long = 'x'.repeat(8193);
  const manyProps = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i]));
  const bigBatch = Array.from({ length: 5001 }, (_, i) => ({ id: `b${i}`, label: 'Concept' }));
  const cases: Array<[string, string, Record<string, unknown>, string]> = [
    // Cypher injection through every place text could reach a query.
    ['label injection', 'kg:add_nodes', { nodes: [{ label: 'Paper) DETACH DELETE (n' }] }, 'INVALID_DATA'],
    ['label with backtick', 'kg:add_nodes', { nodes: [{ label: 'Paper`:Admin' }] }, 'INVALID_DATA'],
    ['reserved label', 'kg:add_nodes', { nodes: [{ label: 'KgNode' }] }, 'INVALID_DATA'],
    [
      'type injection',
      'kg:add_edges',
      { edges: [{ from: 'p1', to: 'p2', type: 'CITES]->() DETACH DELETE (x' }] },
      'INVALID_DATA',
    ],
    [
      'property key injection',
      'kg:add_nodes',
      { nodes: [{ label: 'Paper', properties: { 'a}) DETACH DELETE n //': 1 } }] },
      'INVALID_DATA',
    ],
    ['reserved property key', 'kg:add_nodes', { nodes: [{ label: 'Paper', properties: { id: 'x' } }] }, 'INVALID_DATA'],
    ['where key injection', 'kg:find', { where: { "year') OR 1=1 --": 1 } }, 'INVALID_DATA'],
    ['types filter injection', 'kg:neighbors', { id: 'p1', types: ['CITES|MENTIONS*1..9'] }, 'INVALID_DATA'],
    ['label filter injection', 'kg:find', { label: 'Paper` OR true //' }, 'INVALID_DATA'],
    // Property values.
    [
      'nested object value',
      'kg:add_nodes',
      { nodes: [{ label: 'Paper', properties: { meta: { a: 1 } } }] },
      'INVALID_DATA',
    ],
    ['null value', 'kg:add_nodes', { nodes: [{ label: 'Paper', properties: { a: null } }] }, 'INVALID_DATA'],
    ['mixed array', 'kg:add_nodes', { nodes: [{ label: 'Paper', properties: { a: [1, 'x'] } }] }, 'INVALID_DATA'],
    ['array of arrays', 'kg:add_nodes', { nodes: [{ label: 'Paper', properties: { a: [[1]] } }] }, 'INVALID_DATA'],
    ['string too long', 'kg:add_nodes', { nodes: [{ label: 'Paper', properties: { a: long } }] }, 'INVALID_DATA'],
    ['too many properties', 'kg:add_nodes', { nodes: [{ label: 'Paper', properties: manyProps }] }, 'INVALID_DATA'],
    ['where with an object', 'kg:find', { where: { year: { $gt: 1 } } }, 'INVALID_DATA'],
    // Malformed nodes and batches.
    ['oversized batch', 'kg:add_nodes', { nodes: bigBatch }, 'INVALID_DATA'],
    ['empty batch', 'kg:add_nodes', { nodes: [] }, 'INVALID_DATA'],
    ['nodes not an array', 'kg:add_nodes', { nodes: { id: 'x', label: 'Paper' } }, 'INVALID_DATA'],
    ['missing label', 'kg:add_nodes', { nodes: [{ id: 'x' }] }, 'INVALID_DATA'],
    ['numeric id', 'kg:add_nodes', { nodes: [{ id: 7, label: 'Paper' }] }, 'INVALID_DATA'],
    ['empty id', 'kg:add_nodes', { nodes: [{ id: '', label: 'Paper' }] }, 'INVALID_DATA'],
    ['unknown field', 'kg:add_nodes', { nodes: [{ label: 'Paper', props: {} }] }, 'INVALID_DATA'],
    [
      'duplicate ids in a batch',
      'kg:add_nodes',
      {
        nodes: [
          { id: 'd', label: 'Paper' },
          { id: 'd', label: 'Paper' },
        ],
      },
      'INVALID_DATA',
    ],
    [
      'duplicate edges in a batch',
      'kg:add_edges',
      {
        edges: [
          { from: 'p1', to: 'p2', type: 'CITES' },
          { from: 'p1', to: 'p2', type: 'CITES' },
        ],
      },
      'INVALID_DATA',
    ],
    ['edge without type', 'kg:add_edges', { edges: [{ from: 'p1', to: 'p2' }] }, 'INVALID_DATA'],
    // Ranges.
    ['depth 0', 'kg:neighbors', { id: 'p1', depth: 0 }, 'INVALID_DATA'],
    ['depth too deep', 'kg:neighbors', { id: 'p1', depth: 6 }, 'INVALID_DATA'],
    ['fractional depth', 'kg:neighbors', { id: 'p1', depth: 1.5 }, 'INVALID_DATA'],
    ['depth as a string', 'kg:neighbors', { id: 'p1', depth: '2' }, 'INVALID_DATA'],
    ['bad direction', 'kg:neighbors', { id: 'p1', direction: 'sideways' }, 'INVALID_DATA'],
    ['path max_depth 0', 'kg:path', { from: 'p1', to: 'p2', max_depth: 0 }, 'INVALID_DATA'],
    ['path max_depth 16', 'kg:path', { from: 'p1', to: 'p2', max_depth: 16 }, 'INVALID_DATA'],
    ['path direction in', 'kg:path', { from: 'p1', to: 'p2', direction: 'in' }, 'INVALID_DATA'],
    ['find limit 0', 'kg:find', { limit: 0 }, 'INVALID_DATA'],
    ['find limit 1001', 'kg:find', { limit: 1001 }, 'INVALID_DATA'],
    ['forged cursor', 'kg:find', { cursor: 'eyJhZnRlciI6MX0' }, 'INVALID_DATA'],
    [
      'delete with id and edge',
      'kg:delete',
      { id: 'p1', edge: { from: 'p1', to: 'c1', type: 'MENTIONS' } },
      'INVALID_DATA',
    ],
    ['delete with neither', 'kg:delete', {}, 'INVALID_DATA'],
    ['import relative path', 'kg:import', { path: 'graph.jsonl' }, 'INVALID_DATA'],
    ['import with path and graph', 'kg:import', { path: '/tmp/x', graph: { nodes: [], edges: [] } }, 'INVALID_DATA'],
    ['export format xml', 'kg:export', { format: 'xml' }, 'INVALID_DATA'],
    // Unknown ids.
    ['get unknown', 'kg:get', { id: 'ghost' }, 'NOT_FOUND'],
    ['neighbors unknown', 'kg:neighbors', { id: 'ghost' }, 'NOT_FOUND'],
    ['path unknown', 'kg:path', { from: 'p1', to: 'ghost' }, 'NOT_FOUND'],
    ['delete unknown', 'kg:delete', { id: 'ghost' }, 'NOT_FOUND'],
    [
      'edge to unknown',
      'kg:add_edges',
      {
        edges: [
          { from: 'p1', to: 'p2', type: 'SUPPORTS' },
          { from: 'p1', to: 'ghost', type: 'CITES' },
        ],
      },
      'NOT_FOUND',
    ],
    ['import missing file', 'kg:import', { path: '/nonexistent/graph.jsonl' }, 'NOT_FOUND'],
    // State conflicts.
    [
      'label change',
      'kg:add_nodes',
      {
        nodes: [
          { id: 'new1', label: 'Paper' },
          { id: 'p1', label: 'Concept' },
        ],
      },
      'CONFLICT',
    ],
    ['delete connected without detach', 'kg:delete', { id: 'p1' }, 'CONFLICT'],
    ['cypher on embedded', 'kg:query', { cypher: 'MATCH (n) RETURN n' }, 'CONFLICT'],
  ];

  it.each(cases)('%s → %s answers %s', async (_name, event, data, expected) => {
    const e = await code(event, data);
    expect(e.code).toBe(expected);
    if (expected === 'INVALID_DATA') expect(Array.isArray(e.details?.issues)).toBe(true);
  });

  it('missing endpoints are named in details', async () => {
    const e = await code('kg:add_edges', {
      edges: [
        { from: 'p1', to: 'p2', type: 'SUPPORTS' },
        { from: 'p1', to: 'ghost', type: 'CITES' },
      ],
    });
    expect(e.details?.missing).toEqual([{ path: ['edges', 1, 'to'], id: 'ghost' }]);
  });

  it('a bad file import names the bad line and writes nothing', async () => {
    const file = path.join(d.home, 'bad.jsonl');
    fs.writeFileSync(
      file,
      [
        JSON.stringify({ format: 'agentd-kg', version: 1 }),
        JSON.stringify({ node: { id: 'ok1', label: 'Paper' } }),
        JSON.stringify({ node: { id: 'bad', label: 'No Spaces' } }),
      ].join('\n'),
    );
    const e = await code('kg:import', { path: file });
    expect(e.code).toBe('INVALID_DATA');
    expect(JSON.stringify(e.details)).toContain('"line",3');
    expect((await code('kg:get', { id: 'ok1' })).code).toBe('NOT_FOUND');
  });

  it('after all the bad input the graph is exactly as it was, and the daemon healthy', async () => {
    expect(await d.client.request('kg:stats', {})).toEqual({
      nodes: 3,
      edges: 2,
      labels: { Concept: 1, Paper: 2 },
      types: { CITES: 1, MENTIONS: 1 },
    });
    expect(await d.client.request('system:health', {})).toBeTruthy();
  });
});

describe('kg survives a crash', () => {
  it('an acknowledged write is there after kill -9 and restart', async () => {
    const first = await startDaemon({ config: 'kg:\n  backend: embedded\n', readyTimeoutMs: 60_000 });
    let second: DaemonHandle | null = null;
    try {
      await first.client.request('kg:add_nodes', {
        nodes: [
          { id: 'durable', label: 'Finding', properties: { v: 42 } },
          { id: 'other', label: 'Concept' },
        ],
      });
      await first.client.request('kg:add_edges', { edges: [{ from: 'durable', to: 'other', type: 'RELATES_TO' }] });
      await first.kill('SIGKILL');
      second = await startDaemon({ home: first.home, readyTimeoutMs: 60_000 });
      expect(await second.client.request('kg:get', { id: 'durable' })).toEqual({
        node: { id: 'durable', label: 'Finding', properties: { v: 42 } },
      });
      expect(await second.client.request('kg:stats', {})).toMatchObject({ nodes: 2, edges: 1 });
    } finally {
      await second?.stop();
      if (first.proc.exitCode === null && first.proc.signalCode === null) await first.kill('SIGKILL');
    }
  });
});
