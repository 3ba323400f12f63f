/**
 * Validation issues in the shape the daemon sends them (`INVALID_DATA`'s `details.issues`) and as
 * one line of text. Takes zod's issues, or any `{path, message, code?}` list, without depending on zod.
 */

/** An issue as a validator reports it: a path of keys and indexes, and why. */
export interface IssueLike {
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly code?: string;
}

/** An issue as it crosses the socket: the path dotted (`messages.0.content`), `root` when empty. */
export interface Issue {
  path: string;
  message: string;
  code?: string;
}

/** The issues with dotted paths; an empty path reads as `root` (what was validated: `(data)`, `(file)`). */
export function listIssues(issues: readonly IssueLike[], root = '(data)'): Issue[] {
  return issues.map((i) => {
    const out: Issue = { path: i.path.map(String).join('.') || root, message: i.message };
    if (i.code !== undefined) out.code = i.code;
    return out;
  });
}

/**
 * One line: `path: message; path: message`. With `max`, only the first `max` are spelled out and
 * the rest counted (`a: too small (+2 more)`).
 */
export function formatIssues(issues: readonly IssueLike[], opts: { root?: string; max?: number } = {}): string {
  const list = listIssues(issues, opts.root);
  const shown = opts.max === undefined ? list : list.slice(0, opts.max);
  const more = list.length - shown.length;
  return shown.map((i) => `${i.path}: ${i.message}`).join('; ') + (more > 0 ? ` (+${more} more)` : '');
}
