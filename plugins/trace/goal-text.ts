/**
 * A goal's text as the trace store compares it: the normalised text and its signature (the exact
 * match), and an analysis for the similar match — content terms (stemmed, synonyms folded, stopwords
 * dropped) and slots. Slots are what must be equal for two goals to be the same work: numbers,
 * quoted strings, file names and other literals, and the words that turn a goal around (below/above,
 * largest/smallest, ascending/descending, not). Two goals that differ in a slot are never similar,
 * however many words they share: following the other's trace would replay the wrong work.
 */
import { createHash } from 'node:crypto';
import { stemmer } from 'stemmer';

/** Lowercase, Unicode-folded, quotes unified, punctuation around words dropped, spaces collapsed. */
export function normalizeGoal(text: string): string {
  return tokens(text).join(' ');
}

/** The exact match: the same normalised text. */
export function goalSignature(text: string): string {
  return createHash('sha256').update(normalizeGoal(text)).digest('hex').slice(0, 32);
}

const QUOTES: Array<[RegExp, string]> = [
  [/[\u2018\u2019\u201a\u201b\u2032]/g, "'"],
  [/[\u201c\u201d\u201e\u201f\u2033]/g, '"'],
];

/** Words, numbers and literals (file names, paths, `[5, 3]`, quoted strings kept whole), lowercased unless asked. */
function tokens(text: string, keepCase = false): string[] {
  let s = text.normalize('NFKC');
  if (!keepCase) s = s.toLowerCase();
  for (const [re, to] of QUOTES) s = s.replace(re, to);
  const out: string[] = [];
  // A quoted string or a bracketed list is one literal; otherwise runs of non-space.
  const re = /"[^"]*"|'[^'\s][^']*'(?=\s|$|[.,;:!?)])|\[[^\]]*\]|\S+/g;
  for (const m of s.matchAll(re)) {
    let t = m[0];
    if (t.startsWith('"') || t.startsWith("'")) {
      out.push(`"${t.slice(1, -1).trim().replace(/\s+/g, ' ').toLowerCase()}"`);
      continue;
    }
    if (t.startsWith('[')) {
      out.push(
        `[${t
          .slice(1, -1)
          .split(',')
          .map((x) => x.trim())
          .join(',')
          .toLowerCase()}]`,
      );
      continue;
    }
    // Punctuation at either end is prose, not part of the word (a trailing "." of a file name too);
    // a "!" after digits is a factorial.
    t = t.replace(/^[^\p{L}\p{N}$#@~/.°]+/u, '').replace(/[^\p{L}\p{N}%!)\]]+$/u, '');
    if (!/^\d+!$/.test(t)) t = t.replace(/[?!]+$/, '');
    t = t.replace(/^[(]+|[)]+$/g, '');
    if (t) out.push(t);
  }
  return out;
}

const STOPWORDS = new Set(
  (
    'a an the of in on at to for from by with and or is are was were be been it its this that these those there ' +
    'what which who whom how me my i you your we our us please can could would should will do does did into as all any every ' +
    'each some value values number numbers whole whether if then than up out off s through via about me over per'
  ).split(' '),
);

/** Verbs that only ask for an answer: "compute X", "find X" and "what is X" are the same goal. */
const QUESTION_VERBS = new Set(
  (
    'compute computes calculate calculates determine find get show print display output tell give return report ' +
    'check work figure locate list evaluate obtain'
  ).split(' '),
);

/**
 * Verbs that change the world: a slot of their class, so "remove the duplicate lines" never follows
 * the trace of "find the duplicate lines", however alike the rest.
 */
const ACTIONS: Record<string, string> = {
  delete: 'delete',
  remove: 'delete',
  erase: 'delete',
  drop: 'delete',
  purge: 'delete',
  clear: 'delete',
  create: 'create',
  make: 'create',
  generate: 'create',
  produce: 'create',
  build: 'create',
  add: 'create',
  record: 'create',
  store: 'create',
  save: 'create',
  insert: 'create',
  send: 'send',
  message: 'send',
  notify: 'send',
  email: 'send',
  move: 'move',
  rename: 'rename',
  copy: 'copy',
  update: 'update',
  modify: 'update',
  edit: 'update',
  replace: 'update',
  install: 'install',
  uninstall: 'delete',
  download: 'download',
  upload: 'upload',
  compress: 'compress',
  extract: 'extract',
};

/** Words that say the same thing in a goal, folded to one term (after stemming). */
const SYNONYMS: Record<string, string> = {
  averag: 'mean',
  total: 'sum',
  frequent: 'common',
  commonest: 'common',
  popular: 'common',
  folder: 'directori',
  dir: 'directori',
  document: 'file',
  summar: 'summari',
  summaris: 'summari',
  summariz: 'summari',
  duplic: 'repeat',
  appear: 'repeat',
  twice: 'repeat',
  onc: 'repeat',
  backward: 'revers',
  std: 'standard',
  dev: 'deviat',
  kg: 'graph',
  fahrenheit: 'fahrenheit',
  celsiu: 'celsius',
  '°f': 'fahrenheit',
  '°c': 'celsius',
};

/** Words that turn a goal around: each is a slot of its class, so a goal with its opposite never matches. */
const POLARITY: Record<string, string> = {
  smallest: 'min',
  minimum: 'min',
  min: 'min',
  lowest: 'min',
  least: 'min',
  shortest: 'min',
  largest: 'max',
  biggest: 'max',
  maximum: 'max',
  max: 'max',
  highest: 'max',
  greatest: 'max',
  most: 'max',
  longest: 'max',
  ascending: 'asc',
  increasing: 'asc',
  descending: 'desc',
  decreasing: 'desc',
  not: 'not',
  no: 'not',
  never: 'not',
  without: 'not',
  except: 'not',
  improves: '+',
  improve: '+',
  increases: '+',
  increase: '+',
  raises: '+',
  impairs: '-',
  impair: '-',
  decreases: '-',
  decrease: '-',
  lowers: '-',
  reduces: '-',
  reduce: '-',
};

/** Comparisons: a slot only when a number follows ("under 100"; "under the workspace" is a place). */
const COMPARISONS: Record<string, string> = {
  below: '<',
  under: '<',
  less: '<',
  fewer: '<',
  beneath: '<',
  lower: '<',
  smaller: '<',
  above: '>',
  greater: '>',
  more: '>',
  exceeding: '>',
  higher: '>',
  larger: '>',
  bigger: '>',
};

/** Comparisons spelled as phrases: "less than", "more than"; "from smallest to largest" is an order. */
const PHRASES: Array<[RegExp, string]> = [
  [/\bfrom (smallest|lowest|least) to (largest|highest|greatest|biggest)\b/g, ' ascending '],
  [/\bfrom (largest|highest|greatest|biggest) to (smallest|lowest|least)\b/g, ' descending '],
  [/\bin reverse order\b/g, ' descending '],
  [/\bhow many\b/g, ' count '],
  [/\bword count\b/g, ' count words '],
  [/\bmore than once\b/g, ' repeated '],
  [/\bgreatest common divisor\b/g, ' gcd '],
  [/\bleast common multiple\b/g, ' lcm '],
  [/\b(less|fewer|smaller|lower) than\b/g, ' below '],
  [/\b(more|greater|larger|higher|bigger) than\b/g, ' above '],
  [/\badd up\b/g, ' sum '],
  [/(\d)\s*°\s*([fc])\b/g, '$1 °$2'],
];

const NUMBER_WORDS: Record<string, number> = {
  zero: 0,
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  thirteen: 13,
  fourteen: 14,
  fifteen: 15,
  sixteen: 16,
  seventeen: 17,
  eighteen: 18,
  nineteen: 19,
  twenty: 20,
  thirty: 30,
  forty: 40,
  fifty: 50,
  sixty: 60,
  seventy: 70,
  eighty: 80,
  ninety: 90,
  hundred: 100,
  thousand: 1000,
  million: 1_000_000,
  first: 1,
  second: 2,
  third: 3,
  fourth: 4,
  fifth: 5,
  sixth: 6,
  seventh: 7,
  eighth: 8,
  ninth: 9,
  tenth: 10,
  twentieth: 20,
  thirtieth: 30,
  hundredth: 100,
};

/** What the similar match compares. */
export interface GoalAnalysis {
  /** Content terms, stemmed and folded, in order, repeats kept. */
  terms: string[];
  /** Literals, polarity and action classes, sorted: must be equal for two goals to match. */
  slots: string[];
  /**
   * Terms written with a capital mid-sentence (a label such as Hypothesis, a name, a unit): each must
   * be among the other goal's terms, whatever its case there.
   */
  names: string[];
}

/** A number as a slot: `1,000` and `1000.0` are 1000; `20th` is 20; `5%` is 5. */
function numberSlot(t: string): string | null {
  const m = /^[$#]?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?:st|nd|rd|th|%|k)?$/.exec(t);
  if (!m) return null;
  const whole = m[1]!.replace(/,/g, '');
  const frac = (m[2] ?? '').replace(/0+$/, '');
  const n = frac ? `${Number(whole)}.${frac}` : String(Number(whole));
  return t.endsWith('k') ? `#${Number(n) * 1000}` : `#${n}`;
}

/** Parts of the analysis that can be turned off, to measure what each is worth (bench, finder test). */
export interface AnalysisOptions {
  /** Fold synonyms and phrases (default true). */
  synonyms?: boolean;
  /** Make numbers, literals and polarity words slots (default true); off, they are plain terms. */
  slots?: boolean;
}

/** One word of a goal before it is classified: the text and whether it was written with a capital mid-sentence. */
interface Word {
  t: string;
  named: boolean;
}

/** The words of a goal: phrases folded, ranges and code calls split, capitals noted. */
function words(text: string, syn: boolean): Word[] {
  let s = text.normalize('NFKC');
  if (syn) for (const [re, to] of PHRASES) s = s.replace(new RegExp(re.source, 'gi'), to);
  const out: Word[] = [];
  let sentenceStart = true;
  for (const raw of tokens(s, true)) {
    const lower = raw.toLowerCase();
    const named = !sentenceStart && /^\p{Lu}/u.test(raw);
    sentenceStart = /[.:;!?]$/.test(raw);
    if (lower.startsWith('"') || lower.startsWith('[')) {
      out.push({ t: lower, named: false });
      continue;
    }
    // Ranges such as 1..1000 or 1-1000 are their two numbers.
    const range = /^(\d[\d,]*)(?:\.\.|-|–)(\d[\d,]*)$/.exec(lower);
    if (range) {
      out.push({ t: range[1]!, named: false }, { t: 'to', named: false }, { t: range[2]!, named: false });
      continue;
    }
    // A call written as code, gcd(84, 36): its name, then its arguments.
    const call = /^([a-z_]+)\((.*)$/.exec(lower);
    const parts = call ? [call[1]!, ...call[2]!.split(/[,\s]+/)] : lower.split(/-(?=\D)|(?<=\D)-/);
    for (const p of parts) {
      const t = p.replace(/[(),]+/g, '');
      if (t) out.push({ t, named: named && parts.length === 1 });
    }
  }
  return out;
}

/** The terms and slots of a goal. */
export function analyzeGoal(text: string, opts: AnalysisOptions = {}): GoalAnalysis {
  const syn = opts.synonyms ?? true;
  const useSlots = opts.slots ?? true;
  const terms: string[] = [];
  const slots: string[] = [];
  const names: string[] = [];
  const ws = words(text, syn);
  const isNumber = (w: Word | undefined): boolean =>
    w !== undefined && (numberSlot(w.t) !== null || w.t in NUMBER_WORDS);
  for (const [i, { t, named }] of ws.entries()) {
    if (t.startsWith('"') || t.startsWith('[')) {
      slots.push(t);
      continue;
    }
    // `12!` is the factorial of 12: the literal and the word.
    if (/^\d+!$/.test(t)) {
      slots.push(numberSlot(t.slice(0, -1))!);
      terms.push('factori');
      continue;
    }
    const num = numberSlot(t);
    if (num) {
      slots.push(num);
      // "$1000" says "1000 dollars", "5%" says "5 percent".
      if (t.startsWith('$')) terms.push('dollar');
      if (t.endsWith('%')) terms.push('percent');
      continue;
    }
    if (t in NUMBER_WORDS) {
      slots.push(`#${NUMBER_WORDS[t]}`);
      continue;
    }
    const cmp = COMPARISONS[t];
    if (cmp) {
      if (isNumber(ws[i + 1])) slots.push(`~${cmp}`);
      continue;
    }
    const pol = POLARITY[t];
    if (pol) {
      slots.push(`~${pol}`);
      continue;
    }
    const act = ACTIONS[t];
    if (act) {
      slots.push(`!${act}`);
      continue;
    }
    // File names, paths, identifiers with digits or dots: literals.
    if (/[./\\_@~]/.test(t) && /[a-z0-9]/.test(t) && !/^[a-z]+\.$/.test(t) && !t.startsWith('°')) {
      slots.push(t);
      continue;
    }
    if (/\d/.test(t)) {
      slots.push(t);
      continue;
    }
    if (QUESTION_VERBS.has(t) || STOPWORDS.has(t) || t.length < 2) continue;
    const st = stemmer(t.replace(/'s$/, ''));
    if (STOPWORDS.has(st)) continue;
    const term = syn ? (SYNONYMS[st] ?? SYNONYMS[t] ?? st) : st;
    terms.push(term);
    if (named) names.push(term);
  }
  if (!useSlots) return { terms: [...terms, ...slots], slots: [], names: [] };
  return { terms, slots: slots.sort(), names: [...new Set(names)].sort() };
}

/** Inverse document frequency of a term among `n` goals, `df` of which hold it (smoothed: never 0). */
export const idf = (n: number, df: number): number => Math.log(1 + (n + 1) / (df + 1));

/**
 * How alike two goals are, 0..1: 0 when their slots differ, else the cosine of their term vectors
 * weighted by `weight` (IDF; 1 for every term when the corpus is too small to say).
 */
export function similarity(a: GoalAnalysis, b: GoalAnalysis, weight: (term: string) => number = () => 1): number {
  if (a.slots.length !== b.slots.length || a.slots.some((s, i) => s !== b.slots[i])) return 0;
  if (!covers(a, b) || !covers(b, a)) return 0;
  const va = vector(a.terms, weight);
  const vb = vector(b.terms, weight);
  let dot = 0;
  for (const [t, w] of va) dot += w * (vb.get(t) ?? 0);
  const na = norm(va);
  const nb = norm(vb);
  if (na === 0 || nb === 0) return na === nb && a.slots.length > 0 ? 1 : 0;
  return Math.min(1, dot / (na * nb));
}

/** Every name of `a` is a term of `b`. */
function covers(a: GoalAnalysis, b: GoalAnalysis): boolean {
  if (a.names.length === 0) return true;
  const bt = new Set(b.terms);
  return a.names.every((n) => bt.has(n));
}

function vector(terms: string[], weight: (t: string) => number): Map<string, number> {
  const v = new Map<string, number>();
  // Presence, not counts: a goal repeating a word does not mean it more.
  for (const t of terms) v.set(t, weight(t));
  return v;
}

function norm(v: Map<string, number>): number {
  let s = 0;
  for (const w of v.values()) s += w * w;
  return Math.sqrt(s);
}
