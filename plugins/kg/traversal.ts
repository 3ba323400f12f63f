/**
 * Breadth-first traversals over an "expand a frontier" function, shared by the backends so that
 * neighbour results (order, truncation, which edges are reported) are identical whatever stores the
 * graph. One expand call per level keeps round trips to a database at `depth`, not at nodes visited.
 */

/** One edge met while expanding `at`; `next` is the node on its other side. */
export interface Step {
  from: string;
  type: string;
  to: string;
  at: string;
  next: string;
}

export type Expand = (frontier: string[]) => Step[] | Promise<Step[]>;

export interface BfsResult {
  /** Visited nodes (start excluded) with their distance, in (depth, id) order. */
  order: Array<{ id: string; depth: number }>;
  /** Every step whose both ends were visited (start included). */
  steps: Step[];
  truncated: boolean;
}

/**
 * Visit nodes up to `maxDepth` hops from `start`, at most `limit` of them. Each level's new nodes are
 * taken in id order, so a truncated answer is "the first `limit` nodes by (depth, id)" on every backend.
 */
export async function bfs(
  start: string,
  maxDepth: number,
  limit: number,
  expand: Expand,
  keepSteps: boolean,
): Promise<BfsResult> {
  const depthOf = new Map<string, number>([[start, 0]]);
  const order: Array<{ id: string; depth: number }> = [];
  const allSteps: Step[] = [];
  let frontier = [start];
  let truncated = false;
  for (let d = 1; d <= maxDepth && frontier.length > 0 && !truncated; d++) {
    const steps = await expand(frontier);
    if (keepSteps) for (const s of steps) allSteps.push(s);
    const fresh = new Set<string>();
    for (const s of steps) if (!depthOf.has(s.next)) fresh.add(s.next);
    const sorted = [...fresh].sort(compareIds);
    if (order.length + sorted.length > limit) {
      sorted.length = limit - order.length;
      truncated = true;
    }
    for (const id of sorted) {
      depthOf.set(id, d);
      order.push({ id, depth: d });
    }
    frontier = sorted;
  }
  const steps = keepSteps ? allSteps.filter((s) => depthOf.has(s.next)) : [];
  return { order, steps, truncated };
}

/**
 * Shortest path by bidirectional BFS: expands the smaller side each round, so a path of length L in a
 * graph of branching b costs about 2·b^(L/2) instead of b^L. Returns the node ids in order and, for
 * each hop, the step that was walked (null when there is no path within `maxDepth`).
 */
export async function shortestPath(
  from: string,
  to: string,
  maxDepth: number,
  forward: Expand,
  backward: Expand,
): Promise<{ ids: string[]; steps: Step[] } | null> {
  if (from === to) return { ids: [from], steps: [] };
  // For each visited node: the step that reached it (null for the side's own start).
  const prevF = new Map<string, Step | null>([[from, null]]);
  const prevB = new Map<string, Step | null>([[to, null]]);
  let frontF = [from];
  let frontB = [to];
  let depthF = 0;
  let depthB = 0;
  while (depthF + depthB < maxDepth && frontF.length > 0 && frontB.length > 0) {
    const forwardTurn = frontF.length <= frontB.length;
    const steps = await (forwardTurn ? forward(frontF) : backward(frontB));
    const mine = forwardTurn ? prevF : prevB;
    const other = forwardTurn ? prevB : prevF;
    const next: string[] = [];
    let meet: string | null = null;
    for (const s of steps) {
      if (mine.has(s.next)) continue;
      mine.set(s.next, s);
      next.push(s.next);
      if (meet === null && other.has(s.next)) meet = s.next;
    }
    if (forwardTurn) {
      frontF = next;
      depthF++;
    } else {
      frontB = next;
      depthB++;
    }
    if (meet !== null) return join(meet, prevF, prevB);
  }
  return null;
}

function join(
  meet: string,
  prevF: Map<string, Step | null>,
  prevB: Map<string, Step | null>,
): { ids: string[]; steps: Step[] } {
  const ids: string[] = [meet];
  const steps: Step[] = [];
  for (let s = prevF.get(meet); s; s = prevF.get(s.at)) {
    ids.unshift(s.at);
    steps.unshift(s);
  }
  for (let s = prevB.get(meet); s; s = prevB.get(s.at)) {
    ids.push(s.at);
    steps.push(s);
  }
  return { ids, steps };
}

/** UTF-16 code-unit order, as Neo4j (Java) orders strings; used only to make level order deterministic. */
export const compareIds = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Edge order used wherever a backend returns a set of edges: (from, type, to). */
export const compareEdges = (
  a: { from: string; type: string; to: string },
  b: { from: string; type: string; to: string },
): number => compareIds(a.from, b.from) || compareIds(a.type, b.type) || compareIds(a.to, b.to);
