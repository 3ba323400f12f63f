/**
 * Secrets inside URLs: a password in `bolt://neo4j:pw@host`, a token in `nats://token@host`, a key
 * in `https://host/v1?api_key=...`. Every URL the daemon shows (logs, system:health, plugin:list,
 * error messages, status events) goes through `redactSecrets` first; it finds URLs anywhere in a
 * text, so an error message that quotes one is cleaned as well. Plugins reach it through plugin-api.
 */

/** What a secret is replaced with. */
export const REDACTED = '***';

// scheme://userinfo@ — userinfo runs up to the last @ before the host, so an unencoded @ in a password is covered.
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#]*)@/gi;
// ?name=value or &name=value, for names that carry credentials.
const SECRET_PARAM =
  /([?&;](?:[a-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|auth|credential|signature|sig)[a-z0-9_.-]*)=)[^&#\s"'<>]*/gi;

/**
 * The text with the credentials of every URL in it replaced by REDACTED: the password of a
 * `user:password@` (the user is kept, it helps to know who), the whole of a `token@`, and the value
 * of query parameters named like a secret.
 */
export function redactSecrets(text: string): string {
  if (!text.includes('://') && !text.includes('=')) return text;
  return text
    .replace(USERINFO, (_m, scheme: string, userinfo: string) => {
      if (userinfo === '') return `${scheme}@`;
      const colon = userinfo.indexOf(':');
      return colon < 0 ? `${scheme}${REDACTED}@` : `${scheme}${userinfo.slice(0, colon)}:${REDACTED}@`;
    })
    .replace(SECRET_PARAM, `$1${REDACTED}`);
}

/** `redactSecrets` applied to every string in a value (objects and arrays walked to a bounded depth); a copy when anything changed. */
export function redactDeep<T>(value: T, depth = 8): T {
  if (typeof value === 'string') return redactSecrets(value) as T;
  if (depth <= 0 || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | null = null;
    value.forEach((v, i) => {
      const r = redactDeep(v, depth - 1);
      if (r !== v) (out ??= [...value])[i] = r;
    });
    return (out ?? value) as T;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  let out: Record<string, unknown> | null = null;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const r = redactDeep(v, depth - 1);
    if (r !== v) (out ??= { ...(value as Record<string, unknown>) })[k] = r;
  }
  return (out ?? value) as T;
}
