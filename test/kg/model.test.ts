/** Tables for the kg validators and the shared traversals (no kernel, no database). */
import { describe, expect, it } from 'vitest';
import { edgeInputSchema, nodeInputSchema, valueProblem, LIMITS } from '../../plugins/kg/model.js';
import {
  addEdgesSchema,
  addNodesSchema,
  deleteSchema,
  importSchema,
  neighborsSchema,
} from '../../plugins/kg/schemas.js';
import { bfs, shortestPath, type Step } from '../../plugins/kg/traversal.js';
import { decodeCursor, encodeCursor } from '../../plugins/kg/store.js';

const issuePaths = (r: { success: boolean; error?: { issues: Array<{ path: PropertyKey[] }> } }) =>
  r.success ? [] : r.error!.issues.map((i) => i.path.map(String).join('.'));

describe('property values', () => {
  const ok: unknown[] = [
    '',
    'x'.repeat(LIMITS.string),
    0,
    -1.5,
    1e300,
    true,
    false,
    [],
    ['a', 'b'],
    [1, 2.5],
    [true],
    Array(LIMITS.array).fill(1),
  ];
  const bad: Array<[unknown, RegExp]> = [
    [null, /null is not stored/],
    [undefined, /property value/],
    [{ a: 1 }, /property value/],
    ['x'.repeat(LIMITS.string + 1), /at most/],
    [Number.NaN, /finite/],
    [Infinity, /finite/],
    [[1, 'a'], /one type/],
    [[[1]], /array items/],
    [[null], /array items/],
    [Array(LIMITS.array + 1).fill(1), /at most/],
  ];
  it.each(ok.map((v) => [v]))('accepts %j', (v) => expect(valueProblem(v)).toBeNull());
  it.each(bad)('rejects %j', (v, why) => expect(valueProblem(v)).toMatch(why));
});

describe('node and edge inputs', () => {
  const nodes: Array<[string, unknown, string[]]> = [
    ['minimal', { label: 'Paper' }, []],
    ['full', { id: 'p1', label: 'Paper', properties: { title: 't', year: 2020, tags: ['a'] } }, []],
    ['label injection', { label: 'Paper`) DETACH DELETE (n' }, ['label']],
    ['label with space', { label: 'Research Paper' }, ['label']],
    ['label starting with a digit', { label: '1Paper' }, ['label']],
    ['label too long', { label: `A${'b'.repeat(LIMITS.identifier)}` }, ['label']],
    ['reserved label', { label: 'KgNode' }, ['label']],
    ['key injection', { label: 'P', properties: { 'a`: 1}) DELETE n //': 1 } }, ['properties.a`: 1}) DELETE n //']],
    ['reserved key', { label: 'P', properties: { id: 'x' } }, ['properties.id']],
    ['nested value', { label: 'P', properties: { a: { b: 1 } } }, ['properties.a']],
    ['properties an array', { label: 'P', properties: [1] }, ['properties']],
    [
      'too many properties',
      {
        label: 'P',
        properties: Object.fromEntries(Array.from({ length: LIMITS.properties + 1 }, (_, i) => [`k${i}`, i])),
      },
      ['properties'],
    ],
    ['id too long', { id: 'x'.repeat(LIMITS.id + 1), label: 'P' }, ['id']],
    ['extra field', { label: 'P', kind: 'x' }, ['']],
  ];
  it.each(nodes)('node: %s', (_n, input, paths) => expect(issuePaths(nodeInputSchema.safeParse(input))).toEqual(paths));

  it('edge: type injection and missing fields', () => {
    expect(issuePaths(edgeInputSchema.safeParse({ from: 'a', to: 'b', type: 'CITES]->(x) DELETE x //' }))).toEqual([
      'type',
    ]);
    expect(issuePaths(edgeInputSchema.safeParse({ from: 'a', type: 'CITES' }))).toEqual(['to']);
  });

  it('batches: size caps and duplicates with the path of the repeat', () => {
    expect(
      issuePaths(addNodesSchema.safeParse({ nodes: Array.from({ length: LIMITS.batch + 1 }, () => ({ label: 'P' })) })),
    ).toEqual(['nodes']);
    expect(
      issuePaths(
        addNodesSchema.safeParse({ nodes: [{ id: 'a', label: 'P' }, { label: 'P' }, { id: 'a', label: 'P' }] }),
      ),
    ).toEqual(['nodes.2.id']);
    expect(
      issuePaths(
        addEdgesSchema.safeParse({
          edges: [
            { from: 'a', to: 'b', type: 'T' },
            { from: 'a', to: 'b', type: 'U' },
            { from: 'a', to: 'b', type: 'T' },
          ],
        }),
      ),
    ).toEqual(['edges.2']);
  });

  it('events: defaults and exclusive alternatives', () => {
    expect(neighborsSchema.parse({ id: 'a' })).toEqual({
      id: 'a',
      depth: 1,
      direction: 'both',
      include_edges: false,
      limit: 1000,
    });
    expect(deleteSchema.safeParse({ id: 'a' }).success).toBe(true);
    expect(deleteSchema.safeParse({ edge: { from: 'a', to: 'b', type: 'T' } }).success).toBe(true);
    expect(deleteSchema.safeParse({}).success).toBe(false);
    expect(importSchema.safeParse({ path: '/x', graph: {} }).success).toBe(false);
  });
});

describe('cursors', () => {
  it('round-trip, and anything else is INVALID_DATA', () => {
    expect(decodeCursor(encodeCursor('n42'))).toBe('n42');
    expect(decodeCursor(undefined)).toBeNull();
    for (const bad of ['', 'zzz', Buffer.from('{"after":1}').toString('base64url')])
      expect(() => decodeCursor(bad)).toThrow(/cursor/);
  });
});

describe('traversals', () => {
  // a→b→c→d, a→e, e→d, x isolated; f→a (only reachable walking backwards).
  const edges: Array<[string, string]> = [
    ['a', 'b'],
    ['b', 'c'],
    ['c', 'd'],
    ['a', 'e'],
    ['e', 'd'],
    ['f', 'a'],
  ];
  const out = (frontier: string[]): Step[] =>
    edges.filter(([s]) => frontier.includes(s)).map(([s, t]) => ({ from: s, to: t, type: 'T', at: s, next: t }));
  const inn = (frontier: string[]): Step[] =>
    edges.filter(([, t]) => frontier.includes(t)).map(([s, t]) => ({ from: s, to: t, type: 'T', at: t, next: s }));
  const both = (frontier: string[]) => [...out(frontier), ...inn(frontier)];

  it('bfs: min depth per node, (depth, id) order, truncation, steps', async () => {
    const r = await bfs('a', 3, 100, out, true);
    expect(r.order).toEqual([
      { id: 'b', depth: 1 },
      { id: 'e', depth: 1 },
      { id: 'c', depth: 2 },
      { id: 'd', depth: 2 },
    ]);
    expect(r.steps).toHaveLength(5);
    const t = await bfs('a', 3, 3, out, false);
    expect(t.truncated).toBe(true);
    expect(t.order.map((o) => o.id)).toEqual(['b', 'e', 'c']);
    expect((await bfs('x', 3, 10, out, false)).order).toEqual([]);
  });

  it('shortestPath: directed, undirected, bounded, to itself', async () => {
    expect((await shortestPath('a', 'd', 6, out, inn))?.ids).toEqual(['a', 'e', 'd']);
    expect(await shortestPath('d', 'a', 6, out, inn)).toBeNull();
    expect((await shortestPath('d', 'f', 6, both, both))?.ids).toEqual(['d', 'e', 'a', 'f']);
    expect(await shortestPath('a', 'd', 1, out, inn)).toBeNull();
    expect((await shortestPath('a', 'd', 2, out, inn))?.steps.map((s) => [s.from, s.to])).toEqual([
      ['a', 'e'],
      ['e', 'd'],
    ]);
    expect(await shortestPath('a', 'a', 1, out, inn)).toEqual({ ids: ['a'], steps: [] });
  });
});
