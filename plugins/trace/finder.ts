/**
 * Finding the trace of a goal: the exact signature first; else FTS5 picks the traces sharing the most
 * (rare) terms with the goal, and each candidate is scored by the IDF-weighted cosine of the two goals'
 * terms — zero when a slot differs (another number, file, direction). A candidate at or above the
 * threshold is a match. FTS5's own bm25 ranks well but is not bounded, so it cannot carry a threshold
 * that means the same with 10 traces and with 10,000; the cosine can (measurements: docs/traces.md).
 */
import { analyzeGoal, goalSignature, idf, normalizeGoal, similarity, type GoalAnalysis } from './goal-text.js';
import type { TraceRow, TraceStore } from './store.js';

export interface Match {
  trace: TraceRow;
  match: 'exact' | 'similar';
  score: number;
}

export interface FindOptions {
  threshold: number;
  /** How many FTS5 candidates are scored. */
  candidates: number;
  /** Also demoted traces (follow mode asks for any trace it can use). */
  includeDemoted: boolean;
  /** Most matches answered, best first. */
  limit: number;
  /** The analysis (default analyzeGoal; the measurements pass variants). */
  analyze?: (goal: string) => GoalAnalysis;
  /** Weigh terms by IDF (default true). */
  idf?: boolean;
  /** Only traces this accepts (learned with the same inputs; one an agent turn can follow). */
  accept?: (t: TraceRow) => boolean;
}

/** An FTS5 query matching any of the terms (each quoted: a term is never read as query syntax). */
export function ftsQuery(terms: string[]): string | null {
  const uniq = [...new Set(terms)].filter((t) => t.length > 0);
  if (uniq.length === 0) return null;
  return uniq.map((t) => `"${t.replace(/"/g, '""')}"`).join(' OR ');
}

/** The analysis of a stored trace's goal, from its columns. */
const stored = (t: TraceRow): GoalAnalysis => ({
  terms: t.terms ? t.terms.split(' ') : [],
  slots: JSON.parse(t.slots) as string[],
  names: t.names ? t.names.split(' ') : [],
});

export function findTraces(store: TraceStore, goal: string, o: FindOptions): Match[] {
  const out: Match[] = [];
  const ok = (t: TraceRow): boolean => (o.includeDemoted || t.status === 'active') && (o.accept?.(t) ?? true);
  const exact = store.bySignature(goalSignature(goal));
  if (exact && ok(exact)) out.push({ trace: exact, match: 'exact', score: 1 });
  if (out.length >= o.limit) return out;
  const a = (o.analyze ?? analyzeGoal)(goal);
  const q = ftsQuery(a.terms);
  if (!q) return out;
  const ids = store.candidates(q, o.candidates);
  if (ids.length === 0) return out;
  const rows = store.byRowids(ids).filter((t) => !(exact && t.trace_id === exact.trace_id) && ok(t));
  const analyses = rows.map(stored);
  const n = store.count();
  const df = store.docFreq([...new Set([...a.terms, ...analyses.flatMap((x) => x.terms)])]);
  const w = o.idf === false ? (): number => 1 : (t: string): number => idf(n, df.get(t) ?? 0);
  const scored: Match[] = [];
  for (const [i, t] of rows.entries()) {
    const s = similarity(a, analyses[i]!, w);
    if (s >= o.threshold) scored.push({ trace: t, match: 'similar', score: Math.round(s * 1e6) / 1e6 });
  }
  scored.sort((x, y) => y.score - x.score || (y.trace.last_used_at ?? 0) - (x.trace.last_used_at ?? 0));
  return [...out, ...scored].slice(0, o.limit);
}

/** The columns a goal is stored with. */
export function goalColumns(
  goal: string,
  analyze: (goal: string) => GoalAnalysis = analyzeGoal,
): { signature: string; normalized: string; terms: string; slots: string; names: string } {
  const a = analyze(goal);
  return {
    signature: goalSignature(goal),
    normalized: normalizeGoal(goal),
    terms: a.terms.join(' '),
    slots: JSON.stringify(a.slots),
    names: a.names.join(' '),
  };
}

/** JSON with object keys sorted at every level: the same inputs give the same text. */
export function canonicalJson(v: unknown): string {
  const sort = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(sort);
    if (x && typeof x === 'object')
      return Object.fromEntries(
        Object.keys(x)
          .sort()
          .map((k) => [k, sort((x as Record<string, unknown>)[k])]),
      );
    return x;
  };
  return JSON.stringify(sort(v)) ?? 'null';
}
