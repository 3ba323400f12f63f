/**
 * Sorting names (plugins, events, profiles, models) in code-point order: deterministic on every
 * machine, and free of the ICU collator that a process's first String#localeCompare loads (~6 ms of
 * the daemon's start, for lists of ASCII names where the collation changes nothing).
 */
export function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
