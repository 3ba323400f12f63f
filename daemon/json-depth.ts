/**
 * How deep a JSON text nests, found by a byte scan before anything parses it deeply. A frame of
 * 20,000 nested objects parses, but everything that walks it afterwards (validation, JSON.stringify
 * into a database, structured clone) recurses and overflows the stack or holds the event loop; so a
 * frame deeper than the limit is refused before it reaches a handler. The scan stops at the first
 * bracket past the limit, so refusing a hostile frame costs next to nothing.
 *
 * UTF-8 never puts a quote or a backslash byte inside a multi-byte character, so scanning bytes is exact.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;

/** Stands in for a value that nested too deep, so the refusal can name where it was. */
export const TOO_DEEP_MARK = '\u0000agentd:too-deep';

/** Offset of the first `[` or `{` that opens level `limit + 1`, or -1 when the text nests no deeper than `limit`. */
export function firstTooDeep(buf: Uint8Array, limit: number): number {
  // Level limit+1 needs that many opening and closing brackets: a shorter text cannot reach it.
  if (buf.length < 2 * (limit + 1)) return -1;
  let depth = 0;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (c === QUOTE) {
      for (i++; i < buf.length; i++) {
        const s = buf[i];
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > limit) return i;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    }
  }
  return -1;
}

/**
 * The text with every value that opens a level deeper than `limit` replaced by the string
 * TOO_DEEP_MARK: small and shallow enough to parse, for the envelope fields and the path of the refusal.
 */
export function pruneTooDeep(buf: Buffer, limit: number): string {
  const parts: Buffer[] = [];
  const mark = Buffer.from(JSON.stringify(TOO_DEEP_MARK));
  let depth = 0;
  let from = 0;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (c === QUOTE) {
      for (i++; i < buf.length; i++) {
        const s = buf[i];
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth <= limit) continue;
      // Skip the whole value (strings inside it included) and put the mark in its place.
      parts.push(buf.subarray(from, i), mark);
      let inner = 1;
      for (i++; i < buf.length && inner > 0; i++) {
        const s = buf[i];
        if (s === QUOTE) {
          for (i++; i < buf.length; i++) {
            const q = buf[i];
            if (q === BACKSLASH) i++;
            else if (q === QUOTE) break;
          }
        } else if (s === OPEN_OBJECT || s === OPEN_ARRAY) inner++;
        else if (s === CLOSE_OBJECT || s === CLOSE_ARRAY) inner--;
      }
      depth--;
      from = i;
      i--;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    }
  }
  parts.push(buf.subarray(from));
  return Buffer.concat(parts).toString('utf8');
}

/** The path (keys and indexes) to the first TOO_DEEP_MARK in a pruned value; null when there is none. */
export function pathToMark(value: unknown): Array<string | number> | null {
  // Iterative: the pruned value is shallow, but a walk should never be the thing that recurses.
  const stack: Array<{ v: unknown; path: Array<string | number> }> = [{ v: value, path: [] }];
  while (stack.length) {
    const { v, path } = stack.pop()!;
    if (v === TOO_DEEP_MARK) return path;
    if (typeof v !== 'object' || v === null) continue;
    const entries: Array<[string | number, unknown]> = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v);
    for (let k = entries.length - 1; k >= 0; k--) stack.push({ v: entries[k]![1], path: [...path, entries[k]![0]] });
  }
  return null;
}
