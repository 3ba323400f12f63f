/**
 * Workflow runs (workflow:runs) and, for the chosen one, its DAG: each step a box coloured by its
 * state, an arrow from each of its `needs`, laid out by dagre. Refreshed when the run's
 * workflow:* events arrive. Shown only when the workflow plugin is loaded.
 */
import { useEffect, useMemo, useState } from 'react';
import dagre from '@dagrejs/dagre';
import type { Probe } from '../monitor/hooks/use-daemon-poll.js';
import { clock, usd } from '../monitor/state/format.js';
import type { Api } from './api.js';

interface Run {
  run_id: string;
  workflow: string;
  status: string;
  cost_usd?: number | null;
  created_at?: number;
}
interface Step {
  status: string;
  needs?: string[];
  kind?: string;
  attempts?: number;
  event?: string;
  items?: { total: number; done: number; failed: number; running: number };
  error?: { code?: string; message?: string };
}
interface RunStatus {
  run_id: string;
  workflow: string;
  status: string;
  steps: Record<string, Step>;
  cost_usd?: number | null;
}

const BOX_W = 150;
const BOX_H = 44;

interface Drawn {
  width: number;
  height: number;
  nodes: Array<{ id: string; x: number; y: number }>;
  edges: Array<{ from: string; to: string; points: Array<{ x: number; y: number }> }>;
}

function layout(steps: Record<string, Step>): Drawn {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 18, ranksep: 46, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const id of Object.keys(steps)) g.setNode(id, { width: BOX_W, height: BOX_H });
  for (const [id, s] of Object.entries(steps)) for (const n of s.needs ?? []) if (steps[n]) g.setEdge(n, id);
  dagre.layout(g);
  const graph = g.graph();
  return {
    width: Math.max(200, graph.width ?? 200),
    height: Math.max(80, graph.height ?? 80),
    nodes: g.nodes().map((id: string) => ({ id, ...(g.node(id) as { x: number; y: number }) })),
    edges: g.edges().map((e: { v: string; w: string }) => ({
      from: e.v,
      to: e.w,
      points: (g.edge(e) as { points?: Array<{ x: number; y: number }> }).points ?? [],
    })),
  };
}

export function Workflows({
  api,
  probe,
  version,
  changedRuns,
}: {
  api: Api;
  probe: Probe;
  version: number;
  changedRuns: string[];
}) {
  const runs: Run[] = Array.isArray(probe.data?.runs)
    ? (probe.data!.runs as Run[])
    : Array.isArray(probe.data)
      ? (probe.data as unknown as Run[])
      : [];
  const [chosen, setChosen] = useState<string | null>(null);
  const [status, setStatus] = useState<RunStatus | null>(null);
  const runId = chosen ?? runs[0]?.run_id ?? null;
  const touched = runId !== null && changedRuns.includes(runId) ? version : 0;

  useEffect(() => {
    if (!runId) return;
    let gone = false;
    void api
      .request<RunStatus>('workflow:status', { run_id: runId })
      .then((s) => !gone && setStatus(s))
      .catch(() => undefined);
    return () => void (gone = true);
  }, [api, runId, touched]);

  const drawn = useMemo(() => (status ? layout(status.steps) : null), [status]);
  if (probe.absent) return <p className="muted">workflow: not loaded</p>;
  return (
    <div className="workflows" data-testid="workflows">
      <ul className="runs">
        {runs.slice(0, 20).map((r) => (
          <li key={r.run_id}>
            <button
              type="button"
              className={r.run_id === runId ? 'current' : ''}
              data-run={r.run_id}
              onClick={() => setChosen(r.run_id)}
            >
              <span className={`st ${r.status}`}>{r.status}</span> {r.workflow}{' '}
              <span className="muted">
                {r.created_at ? clock(r.created_at) : ''} {r.cost_usd ? usd(r.cost_usd) : ''}
              </span>
            </button>
          </li>
        ))}
        {runs.length === 0 && <li className="muted">no runs yet</li>}
      </ul>
      {drawn && status && status.run_id === runId && (
        <svg
          viewBox={`0 0 ${drawn.width} ${drawn.height}`}
          width={drawn.width}
          height={drawn.height}
          data-testid="workflow-dag"
          aria-label={`steps of ${status.run_id}`}
        >
          <defs>
            <marker
              id="dag-arrow"
              viewBox="0 0 10 10"
              refX="9"
              refY="5"
              markerWidth="7"
              markerHeight="7"
              orient="auto-start-reverse"
            >
              <path d="M 0 0 L 10 5 L 0 10 z" fill="#565f89" />
            </marker>
          </defs>
          {drawn.edges.map((e) => (
            <polyline
              key={`${e.from}-${e.to}`}
              className="dag-edge"
              points={e.points.map((p) => `${p.x},${p.y}`).join(' ')}
              markerEnd="url(#dag-arrow)"
            />
          ))}
          {drawn.nodes.map((n) => {
            const s = status.steps[n.id];
            return (
              <g
                key={n.id}
                className={`dag-step st-${s.status}`}
                data-step-id={n.id}
                data-status={s.status}
                transform={`translate(${n.x - BOX_W / 2},${n.y - BOX_H / 2})`}
              >
                <title>{s.error?.message ?? `${n.id}: ${s.status}`}</title>
                <rect width={BOX_W} height={BOX_H} rx={6} />
                <text x={8} y={17}>
                  {n.id}
                </text>
                <text x={8} y={34} className="sub">
                  {s.status}
                  {s.items ? ` ${s.items.done}/${s.items.total}` : ''}
                  {s.attempts && s.attempts > 1 ? ` ×${s.attempts}` : ''}
                </text>
              </g>
            );
          })}
        </svg>
      )}
    </div>
  );
}
