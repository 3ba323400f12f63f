/** Does an event name match any of a list of agentd patterns (`ns:action`, `ns:*`, `ns:**`, `*`)? */
export class PatternMatcher {
  private readonly exact = new Set<string>();
  private readonly one: string[] = [];
  private readonly many: string[] = [];
  private all = false;

  constructor(patterns: string[]) {
    for (const p of patterns) {
      if (p === '*') this.all = true;
      else if (p.endsWith(':**')) this.many.push(p.slice(0, -2));
      else if (p.endsWith(':*')) this.one.push(p.slice(0, -1));
      else this.exact.add(p);
    }
  }

  matches(event: string): boolean {
    if (this.all || this.exact.has(event)) return true;
    for (const prefix of this.many) if (event.startsWith(prefix) && event.length > prefix.length) return true;
    for (const prefix of this.one) if (event.startsWith(prefix) && event.length > prefix.length && !event.includes(':', prefix.length)) return true;
    return false;
  }
}
