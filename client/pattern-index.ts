/**
 * Event-name patterns, the one implementation for the router, plugins and clients alike: `ns:action`,
 * `ns:*` (exactly one more segment), `ns:**` (one or more), `*` (everything). Matching is a data
 * structure (nats-server's sublist idea): exact names in a map, wildcard patterns in a token tree,
 * match results cached with a bound.
 */
import { PATTERN_RE } from './protocol.js';

interface Node<T> {
  children: Map<string, Node<T>>;
  /** Subscribers of `<prefix>:*`. */
  one: Set<T>;
  /** Subscribers of `<prefix>:**`. */
  many: Set<T>;
}

const newNode = <T>(): Node<T> => ({ children: new Map(), one: new Set(), many: new Set() });

export const isValidPattern = (p: string): boolean => PATTERN_RE.test(p);

export class PatternIndex<T> {
  private readonly exact = new Map<string, Set<T>>();
  private readonly root: Node<T> = newNode();
  private readonly all = new Set<T>();
  private readonly cache = new Map<string, T[]>();
  private wildcardCount = 0;

  constructor(private readonly cacheLimit = 4096) {}

  add(pattern: string, sub: T): void {
    this.cache.clear();
    if (pattern === '*') {
      this.all.add(sub);
      return;
    }
    const tokens = pattern.split(':');
    const last = tokens[tokens.length - 1];
    if (last !== '*' && last !== '**') {
      let set = this.exact.get(pattern);
      if (!set) this.exact.set(pattern, (set = new Set()));
      set.add(sub);
      return;
    }
    let node = this.root;
    for (const t of tokens.slice(0, -1)) {
      let next = node.children.get(t);
      if (!next) node.children.set(t, (next = newNode()));
      node = next;
    }
    (last === '*' ? node.one : node.many).add(sub);
    this.wildcardCount++;
  }

  remove(pattern: string, sub: T): void {
    this.cache.clear();
    if (pattern === '*') {
      this.all.delete(sub);
      return;
    }
    const tokens = pattern.split(':');
    const last = tokens[tokens.length - 1];
    if (last !== '*' && last !== '**') {
      const set = this.exact.get(pattern);
      if (set) {
        set.delete(sub);
        if (set.size === 0) this.exact.delete(pattern);
      }
      return;
    }
    const path: Node<T>[] = [this.root];
    let node = this.root;
    for (const t of tokens.slice(0, -1)) {
      const next = node.children.get(t);
      if (!next) return;
      path.push((node = next));
    }
    if ((last === '*' ? node.one : node.many).delete(sub)) this.wildcardCount--;
    // Prune empty branches so a churn of subscriptions does not leave a growing tree behind.
    for (let i = path.length - 1; i > 0; i--) {
      const n = path[i];
      if (n.children.size || n.one.size || n.many.size) break;
      path[i - 1].children.delete(tokens[i - 1]);
    }
  }

  /** Every subscriber whose pattern matches the event name, each once. */
  match(event: string): readonly T[] {
    const hit = this.cache.get(event);
    if (hit) return hit;
    const out = new Set<T>(this.all);
    const ex = this.exact.get(event);
    if (ex) for (const s of ex) out.add(s);
    if (this.wildcardCount > 0) {
      const tokens = event.split(':');
      let node: Node<T> | undefined = this.root;
      for (let i = 0; i < tokens.length && node; i++) {
        const remaining = tokens.length - i;
        for (const s of node.many) out.add(s);
        if (remaining === 1) for (const s of node.one) out.add(s);
        node = node.children.get(tokens[i]);
      }
    }
    const arr = [...out];
    if (this.cache.size >= this.cacheLimit) this.cache.clear();
    this.cache.set(event, arr);
    return arr;
  }

  get size(): number {
    let n = this.all.size + this.wildcardCount;
    for (const s of this.exact.values()) n += s.size;
    return n;
  }
}

/** Does an event name match any of `patterns`? Compiled once; `[]` matches nothing. */
export function matchPatterns(patterns: readonly string[]): (event: string) => boolean {
  if (patterns.length === 0) return () => false;
  if (patterns.includes('*')) return () => true;
  const idx = new PatternIndex<true>();
  for (const p of patterns) idx.add(p, true);
  return (event) => idx.match(event).length > 0;
}
