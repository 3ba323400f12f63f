/**
 * The knowledge graph drawn around one node: it and its neighbours (kg:neighbors with edges),
 * laid out by d3-force, as SVG you click through: a click on a neighbour makes it the centre.
 * The trail of visited nodes leads back; the centre's properties are listed beside the drawing.
 * Redrawn when the graph changes (kg:changed).
 */
import { useEffect, useMemo, useState } from 'react';
import {
  forceCollide,
  forceLink,
  forceManyBody,
  forceSimulation,
  type SimulationLinkDatum,
  type SimulationNodeDatum,
} from 'd3-force';
import type { Api } from './api.js';

interface KgNode {
  id: string;
  label: string;
  properties?: Record<string, unknown>;
  depth?: number;
}
interface KgEdge {
  from: string;
  to: string;
  type: string;
}
type SimNode = KgNode & SimulationNodeDatum;

const W = 640;
const H = 420;
const COLORS = ['#7aa2f7', '#9ece6a', '#e0af68', '#bb9af7', '#7dcfff', '#f7768e', '#73daca', '#ff9e64'];
const colorOf = (label: string): string =>
  COLORS[[...label].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % COLORS.length];

function layout(
  center: KgNode,
  nodes: KgNode[],
  edges: KgEdge[],
): { nodes: SimNode[]; links: Array<{ source: SimNode; target: SimNode; type: string }> } {
  // The centre is pinned; its neighbours start on a ring around it (the forces then untangle them).
  const others = nodes.filter((n) => n.id !== center.id);
  const all: SimNode[] = [
    { ...center, fx: W / 2, fy: H / 2 },
    ...others.map((n, i) => ({
      ...n,
      x: W / 2 + 150 * Math.cos((2 * Math.PI * i) / others.length),
      y: H / 2 + 150 * Math.sin((2 * Math.PI * i) / others.length),
    })),
  ];
  const byId = new Map(all.map((n) => [n.id, n]));
  const links = edges
    .filter((e) => byId.has(e.from) && byId.has(e.to))
    .map((e) => ({ source: e.from, target: e.to, type: e.type }));
  const sim = forceSimulation(all)
    .force(
      'link',
      forceLink<SimNode, SimulationLinkDatum<SimNode> & { type: string }>(links)
        .id((n) => n.id)
        .distance(110),
    )
    .force('charge', forceManyBody().strength(-260))
    .force('collide', forceCollide(26))
    .stop();
  // Laid out at once (no animation): the same graph is drawn the same way, which a person and a test can follow.
  for (let i = 0; i < 240; i++) sim.tick();
  for (const n of all) {
    n.x = Math.max(30, Math.min(W - 30, n.x ?? W / 2));
    n.y = Math.max(24, Math.min(H - 24, n.y ?? H / 2));
  }
  return { nodes: all, links: links as unknown as Array<{ source: SimNode; target: SimNode; type: string }> };
}

export function KgExplorer({ api, version }: { api: Api; version: number }) {
  const [trail, setTrail] = useState<string[]>([]);
  const [search, setSearch] = useState('');
  const [view, setView] = useState<{ center: KgNode; nodes: KgNode[]; edges: KgEdge[]; truncated: boolean } | null>(
    null,
  );
  const [error, setError] = useState<string | null>(null);
  const focus = trail[trail.length - 1];

  // No centre yet: the first node the graph lists.
  useEffect(() => {
    if (focus) return;
    void api
      .request<{ nodes: KgNode[] }>('kg:find', { limit: 1 })
      .then((r) => r.nodes[0] && setTrail([r.nodes[0].id]))
      .catch((e: Error) => setError(e.message));
  }, [api, focus, version]);

  useEffect(() => {
    if (!focus) return;
    let gone = false;
    void (async () => {
      try {
        const got = await api.request<Record<string, unknown>>('kg:get', { id: focus });
        const center = (got.node as KgNode | undefined) ?? (got as unknown as KgNode);
        const nb = await api.request<{ nodes: KgNode[]; edges?: KgEdge[]; truncated: boolean }>('kg:neighbors', {
          id: focus,
          depth: 1,
          include_edges: true,
          limit: 60,
        });
        if (!gone) {
          setView({ center, nodes: nb.nodes, edges: nb.edges ?? [], truncated: nb.truncated });
          setError(null);
        }
      } catch (e) {
        if (!gone) setError((e as Error).message);
      }
    })();
    return () => void (gone = true);
  }, [api, focus, version]);

  const drawn = useMemo(() => (view ? layout(view.center, view.nodes, view.edges) : null), [view]);
  const go = (id: string) => setTrail((t) => (t[t.length - 1] === id ? t : [...t.slice(-19), id]));

  return (
    <div className="kg" data-testid="kg-explorer">
      <form
        className="kg-search"
        onSubmit={(e) => {
          e.preventDefault();
          // A node looked up starts a new trail; clicks extend it.
          if (search.trim()) setTrail([search.trim()]);
        }}
      >
        <input
          aria-label="node id"
          placeholder="go to node id"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
        />
        <button type="submit">go</button>
        <span className="trail" data-testid="kg-trail">
          {trail.map((id, i) => (
            <button
              type="button"
              key={`${id}-${i}`}
              className={i === trail.length - 1 ? 'current' : ''}
              onClick={() => setTrail(trail.slice(0, i + 1))}
            >
              {id}
            </button>
          ))}
        </span>
      </form>
      {error && <p className="warn">{error}</p>}
      {!drawn && !error && <p className="muted">the graph is empty</p>}
      {drawn && view && (
        <div className="kg-body">
          <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`graph around ${view.center.id}`} data-testid="kg-svg">
            <defs>
              <marker
                id="arrow"
                viewBox="0 0 10 10"
                refX="22"
                refY="5"
                markerWidth="6"
                markerHeight="6"
                orient="auto-start-reverse"
              >
                <path d="M 0 0 L 10 5 L 0 10 z" fill="#565f89" />
              </marker>
            </defs>
            {drawn.links.map((l, i) => (
              <g key={i} className="kg-edge">
                <line x1={l.source.x} y1={l.source.y} x2={l.target.x} y2={l.target.y} markerEnd="url(#arrow)" />
                <text
                  x={((l.source.x ?? 0) + (l.target.x ?? 0)) / 2}
                  y={((l.source.y ?? 0) + (l.target.y ?? 0)) / 2 - 3}
                >
                  {l.type}
                </text>
              </g>
            ))}
            {drawn.nodes.map((n) => (
              <g
                key={n.id}
                className={`kg-node${n.id === view.center.id ? ' center' : ''}`}
                data-node-id={n.id}
                transform={`translate(${n.x},${n.y})`}
                onClick={() => go(n.id)}
                role="button"
                aria-label={`${n.label} ${n.id}`}
              >
                <circle r={n.id === view.center.id ? 16 : 11} fill={colorOf(n.label)} />
                <text y={-18} textAnchor="middle">
                  {n.id.length > 24 ? `${n.id.slice(0, 23)}…` : n.id}
                </text>
              </g>
            ))}
          </svg>
          <aside className="kg-details" data-testid="kg-details">
            <h3 data-testid="kg-center">{view.center.id}</h3>
            <p>
              <span className="chip" style={{ background: colorOf(view.center.label) }}>
                {view.center.label}
              </span>{' '}
              {view.nodes.length} neighbours{view.truncated ? ' (more not shown)' : ''}
            </p>
            <pre>{JSON.stringify(view.center.properties ?? {}, null, 2)}</pre>
          </aside>
        </div>
      )}
    </div>
  );
}
