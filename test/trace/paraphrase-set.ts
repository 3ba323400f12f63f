/**
 * The paraphrase set (paraphrases.yaml) and its measurement: a store holding one trace per group's
 * goal (plus, when asked, distractor traces), every paraphrase, near miss and unrelated goal asked of
 * the finder, and precision and recall counted. Shared by the finder test and bench/trace.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';
import YAML from 'yaml';
import { migrate, openDatabase } from '../../daemon/persistence.js';
import { analyzeGoal, type AnalysisOptions, type GoalAnalysis } from '../../plugins/trace/goal-text.js';
import { findTraces, goalColumns } from '../../plugins/trace/finder.js';
import { MIGRATIONS, TraceStore } from '../../plugins/trace/store.js';

export interface Group {
  goal: string;
  paraphrases: string[];
  near_misses: string[];
}

export interface ParaphraseSet {
  groups: Group[];
  unrelated: string[];
}

export function loadParaphrases(): ParaphraseSet {
  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), 'paraphrases.yaml');
  return YAML.parse(fs.readFileSync(file, 'utf8')) as ParaphraseSet;
}

/** A fresh database with the trace tables. */
export function traceDb(): { db: Database.Database; store: TraceStore; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-trace-eval-'));
  const db = openDatabase(dir);
  migrate(db, 'trace', MIGRATIONS);
  return { db, store: new TraceStore(db), dir };
}

let seq = 0;
/** Store a trace for a goal (no items: the finder reads only the goal's columns). */
export function addTrace(store: TraceStore, goal: string, analyze?: (g: string) => GoalAnalysis): string {
  const id = `t${++seq}`;
  store.insert({
    trace_id: id,
    ...goalColumns(goal, analyze),
    goal,
    plan: '{}',
    inputs: '{}',
    learned_run_id: `r${seq}`,
    learned_cost_usd: 0.01,
    learned_duration_ms: 1000,
    now: Date.now(),
  });
  return id;
}

export interface Variant {
  name: string;
  analysis: AnalysisOptions;
  idf: boolean;
}

export const VARIANTS: Variant[] = [
  { name: 'cosine+idf, synonyms, slots (shipped)', analysis: {}, idf: true },
  { name: 'cosine+idf, slots, no synonyms', analysis: { synonyms: false }, idf: true },
  { name: 'cosine+idf, synonyms, no slots', analysis: { slots: false }, idf: true },
  { name: 'cosine without idf, synonyms, slots', analysis: {}, idf: false },
];

export interface Scores {
  threshold: number;
  /** Of the goals that should find a trace, how many found the right one. */
  recall: number;
  /** Of the traces found, how many were the right one. */
  precision: number;
  found: number;
  correct: number;
  should: number;
  /** Near misses and unrelated goals that found a trace (each one a wrong replay). */
  false_matches: string[];
}

export type Half = 'dev' | 'test' | 'all';

/** Ask the finder every query of a half of the set, with one variant, at a threshold. */
export function measure(
  set: ParaphraseSet,
  half: Half,
  variant: Variant,
  threshold: number,
  distractors: string[] = [],
): Scores {
  const { db, store, dir } = traceDb();
  const analyze = (g: string): GoalAnalysis => analyzeGoal(g, variant.analysis);
  try {
    const groups = set.groups.filter((_, i) => half === 'all' || (half === 'dev') === (i % 2 === 0));
    const ids = groups.map((g) => addTrace(store, g.goal, analyze));
    for (const d of distractors) addTrace(store, d, analyze);
    const unrelated = set.unrelated.filter((_, i) => half === 'all' || (half === 'dev') === (i % 2 === 0));
    const queries: Array<{ q: string; want: string | null }> = [];
    groups.forEach((g, i) => {
      for (const p of g.paraphrases) queries.push({ q: p, want: ids[i]! });
      for (const m of g.near_misses) queries.push({ q: m, want: null });
    });
    for (const u of unrelated) queries.push({ q: u, want: null });
    let found = 0;
    let correct = 0;
    const wrong: string[] = [];
    for (const { q, want } of queries) {
      const m = findTraces(store, q, {
        threshold,
        candidates: 20,
        includeDemoted: false,
        limit: 1,
        analyze,
        idf: variant.idf,
      })[0];
      if (!m) continue;
      found++;
      if (m.trace.trace_id === want) correct++;
      else wrong.push(`${q} → ${m.trace.goal} (${m.score.toFixed(3)})`);
    }
    const should = queries.filter((x) => x.want !== null).length;
    return {
      threshold,
      recall: correct / should,
      precision: found ? correct / found : 1,
      found,
      correct,
      should,
      false_matches: wrong,
    };
  } finally {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The precision the threshold is chosen for: a wrong match replays another goal's work. */
export const TARGET_PRECISION = 0.95;

/** The threshold with the best recall at the target precision on the dev half (ties: the higher threshold). */
export function chooseThreshold(
  set: ParaphraseSet,
  variant: Variant,
  grid = Array.from({ length: 21 }, (_, i) => 0.5 + i * 0.025),
): Scores {
  let best: Scores | null = null;
  for (const t of grid) {
    const s = measure(set, 'dev', variant, Math.round(t * 1000) / 1000);
    if (s.precision < TARGET_PRECISION) continue;
    if (!best || s.recall >= best.recall) best = s;
  }
  return best ?? measure(set, 'dev', variant, 1);
}
