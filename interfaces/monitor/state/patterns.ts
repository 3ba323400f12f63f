/**
 * The log filter: the daemon's subscription patterns (`ns:action`, `ns:*`, `ns:**`, `*`), a few at a
 * time, plus two conveniences for people typing fast: a bare namespace means `ns:**`, and a leading
 * `!` hides what the pattern matches.
 */
import { matchPatterns } from '../../../client/pattern-index.js';
import { PATTERN_RE } from '../../../client/protocol.js';

export interface Filter {
  /** What the user typed, normalised (single spaces). */
  text: string;
  include: string[];
  exclude: string[];
  match: (event: string) => boolean;
}

const ALL = (): boolean => true;

export const NO_FILTER: Filter = { text: '', include: [], exclude: [], match: ALL };

/** Parse a filter line; throws an Error naming the bad pattern. */
export function parseFilter(input: string): Filter {
  const tokens = input.split(/[\s,]+/).filter(Boolean);
  if (tokens.length === 0) return NO_FILTER;
  const include: string[] = [];
  const exclude: string[] = [];
  for (const tok of tokens) {
    const neg = tok.startsWith('!');
    let p = neg ? tok.slice(1) : tok;
    if (/^[a-z][a-z0-9_]*$/.test(p)) p = `${p}:**`;
    if (!PATTERN_RE.test(p)) throw new Error(`bad pattern "${tok}": use ns:action, ns:*, ns:** or *`);
    (neg ? exclude : include).push(p);
  }
  const inc = matchPatterns(include);
  const exc = matchPatterns(exclude);
  const match = (event: string): boolean => (include.length === 0 || inc(event)) && !(exclude.length > 0 && exc(event));
  return { text: tokens.join(' '), include, exclude, match };
}

/** One matcher for a list of patterns, with the daemon's semantics (the daemon's own matcher). */
export const compile = matchPatterns;

/** The positive patterns to ask the daemon's history for (null: everything). */
export function historyPatterns(f: Filter): string[] | null {
  return f.include.length ? f.include : null;
}
