/**
 * Learned traces:
 *  - lookup among 10,000 traces: trace:find's work (exact signature, then FTS5 candidates scored by
 *    the weighted cosine) for paraphrases, exact goals and goals with no trace, beside the bare
 *    primary-key SELECT of a signature in the same database, rounds alternating;
 *  - the paraphrase set's precision and recall with those 10,000 traces in the store (IDF at scale);
 *  - a goal followed beside the same goal learned, in a daemon against the local Messages API
 *    server: wall time, cost, and the model calls each made. The local server answers at once, so a
 *    second pair is run with each model reply held for a set latency, closer to a real model.
 * Alone: `npx tsx bench/trace.ts [--quick]`.
 */
import { performance } from 'node:perf_hooks';
import { analyzeGoal, normalizeGoal } from '../plugins/trace/goal-text.js';
import { findTraces } from '../plugins/trace/finder.js';
import { configSchema } from '../plugins/trace/schemas.js';
import { startMessagesApiServer, type MessagesApiServer } from '../test/fixtures/messages-api-server.js';
import { startDaemon } from '../test/helpers/daemon-process.js';
import { addTrace, loadParaphrases, measure, traceDb, VARIANTS } from '../test/trace/paraphrase-set.js';
import { traceModel, type Task } from '../test/trace/model.js';
import { KEY, workflowConfig } from '../test/workflow/helpers.js';
import { round } from './stats.js';

const OPS = [
  'Count',
  'Sum',
  'List',
  'Plot',
  'Sort',
  'Average',
  'Summarise',
  'Deduplicate',
  'Validate',
  'Compress',
  'Index',
  'Tag',
  'Rank',
  'Cluster',
  'Translate',
];
const THINGS = [
  'the prime numbers',
  'the even numbers',
  'the rows of sales',
  'the words of chapter',
  'the errors in service',
  'the images of album',
  'the invoices of client',
  'the commits of repository',
  'the tickets of sprint',
  'the measurements of sensor',
  'the emails of mailbox',
  'the nodes of graph',
  'the papers of topic',
  'the orders of store',
];
const TAILS = ['below {n}', 'in file_{n}.csv', 'from week {n}', 'for region {n}', 'of batch {n}', 'with id {n}'];

/** Distinct goals that look like what an agent fleet is asked, none equal to a paraphrase-set goal. */
export function syntheticGoals(n: number): string[] {
  const out = new Set<string>();
  let i = 0;
  while (out.size < n) {
    const op = OPS[i % OPS.length]!;
    const thing = THINGS[Math.floor(i / OPS.length) % THINGS.length]!;
    const tail = TAILS[Math.floor(i / (OPS.length * THINGS.length)) % TAILS.length]!.replace(
      '{n}',
      String(1000 + ((i * 7919) % 90_000)),
    );
    out.add(`${op} ${thing} ${tail}`);
    i++;
  }
  return [...out];
}

const pct = (xs: number[], p: number): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

function lookup(quick: boolean): Record<string, unknown> {
  const n = quick ? 2000 : 10_000;
  const set = loadParaphrases();
  const { db, store } = traceDb();
  const t0 = performance.now();
  const goals = syntheticGoals(n - set.groups.length);
  db.transaction(() => {
    for (const g of goals) addTrace(store, g);
    for (const g of set.groups) addTrace(store, g.goal);
  })();
  const fillMs = performance.now() - t0;
  const o = { threshold: configSchema.parse({}).threshold, candidates: 20, includeDemoted: false, limit: 1 };
  const kinds: Record<string, string[]> = {
    paraphrase: set.groups.flatMap((g) => g.paraphrases),
    exact: goals.filter((_, i) => i % Math.floor(goals.length / 60) === 0).slice(0, 60),
    no_trace: [...set.unrelated, ...set.groups.flatMap((g) => g.near_misses)],
  };
  const rounds = quick ? 3 : 15;
  const out: Record<string, unknown> = { traces: store.count(), fill_ms: round(fillMs) };
  for (const [kind, qs] of Object.entries(kinds)) {
    const find: number[] = [];
    const bare: number[] = [];
    for (let r = 0; r < rounds; r++) {
      for (const q of qs) {
        let s = performance.now();
        findTraces(store, q, o);
        find.push((performance.now() - s) * 1000);
        s = performance.now();
        store.bySignature(q);
        bare.push((performance.now() - s) * 1000);
      }
    }
    out[kind] = {
      queries: qs.length * rounds,
      find_median_us: round(pct(find, 0.5)),
      find_p95_us: round(pct(find, 0.95)),
      baseline_pk_select_median_us: round(pct(bare, 0.5)),
      ratio_median: round(pct(find, 0.5) / pct(bare, 0.5)),
    };
  }
  db.close();
  const analyze = performance.now();
  for (const g of goals.slice(0, 1000)) analyzeGoal(g);
  out.analyze_goal_us = round(((performance.now() - analyze) * 1000) / 1000);
  return out;
}

function qualityAtScale(quick: boolean): Record<string, unknown> {
  const set = loadParaphrases();
  // A distractor that is one of the set's queries (the generator can make "Count the prime numbers below 1000") is not a distractor.
  const asked = new Set(
    [...set.groups.flatMap((g) => [g.goal, ...g.paraphrases, ...g.near_misses]), ...set.unrelated].map(normalizeGoal),
  );
  const distractors = syntheticGoals(quick ? 2000 : 10_000 - set.groups.length).filter(
    (g) => !asked.has(normalizeGoal(g)),
  );
  const th = configSchema.parse({}).threshold;
  const out: Record<string, unknown> = { distractors: distractors.length };
  for (const v of VARIANTS) {
    const s = measure(set, 'all', v, th, distractors);
    out[v.name] = {
      threshold: th,
      precision: round(s.precision, 3),
      recall: round(s.recall, 3),
      false_matches: s.false_matches,
    };
  }
  return out;
}

const TASK: Task = {
  tools: ['kg_add'],
  message: 'Count the prime numbers below 100 and record the count in the graph as node bench-primes.',
  call: { name: 'kg_add', input: { nodes: [{ id: 'bench-primes', label: 'Finding', properties: { count: 25 } }] } },
  answer: 'There are 25 prime numbers below 100.',
};

async function learnVsFollow(
  api: MessagesApiServer,
  latencyMs: number,
  pairs: number,
): Promise<Record<string, unknown>> {
  const model = traceModel(() => TASK);
  const handler = (r: Parameters<typeof model>[0]) => ({ ...model(r), ...(latencyMs ? { delayMs: latencyMs } : {}) });
  api.reset();
  api.setHandler(handler);
  const d = await startDaemon({
    env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
    config: workflowConfig(),
    readyTimeoutMs: 60_000,
  });
  const learn: Array<{ ms: number; usd: number; calls: number }> = [];
  const follow: Array<{ ms: number; usd: number; calls: number }> = [];
  try {
    for (let i = 0; i < pairs; i++) {
      const goal = `Count the prime numbers below 100 (round ${i})`;
      for (const mode of ['learn', 'follow'] as const) {
        const before = api.messageRequests().length;
        const t0 = performance.now();
        const r = await d.client.request<{ status: string; mode: string; cost_usd: number }>(
          'workflow:run_goal',
          { goal, mode },
          { timeoutMs: 300_000 },
        );
        const ms = performance.now() - t0;
        if (r.status !== 'succeeded' || r.mode !== mode)
          throw new Error(`bench ${mode} run ended ${r.status} in mode ${r.mode}`);
        (mode === 'learn' ? learn : follow).push({ ms, usd: r.cost_usd, calls: api.messageRequests().length - before });
      }
    }
  } finally {
    await d.stop();
  }
  const med = (xs: Array<{ ms: number }>): number =>
    pct(
      xs.map((x) => x.ms),
      0.5,
    );
  return {
    model_latency_ms: latencyMs,
    pairs,
    learned: { median_ms: round(med(learn)), cost_usd: round(learn[0]!.usd, 9), model_calls: learn[0]!.calls },
    followed: { median_ms: round(med(follow)), cost_usd: round(follow[0]!.usd, 9), model_calls: follow[0]!.calls },
    time_ratio_follow_over_learn: round(med(follow) / med(learn), 3),
  };
}

export async function benchTrace(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {
    lookup: lookup(opts.quick),
    paraphrase_set_with_distractors: qualityAtScale(opts.quick),
  };
  const api = await startMessagesApiServer();
  try {
    out.learn_vs_follow_instant_model = await learnVsFollow(api, 0, opts.quick ? 1 : 5);
    out.learn_vs_follow_model_500ms = await learnVsFollow(api, 500, opts.quick ? 1 : 3);
  } finally {
    await api.close();
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchTrace({ quick: process.argv.includes('--quick') });
  process.stdout.write(JSON.stringify(r, null, 2) + '\n');
  process.exit(0);
}
