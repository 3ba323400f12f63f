/** Small formatting helpers shared by the panels (pure; no React). */

/** `HH:MM:SS` of a Unix-seconds timestamp, local time. */
export function clock(ts: number): string {
  const d = new Date(ts * 1000);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** `3d04h`, `2h05m`, `4m07s`, `12s`. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const p = (n: number): string => String(n).padStart(2, '0');
  if (d) return `${d}d${p(h)}h`;
  if (h) return `${h}h${p(m)}m`;
  if (m) return `${m}m${p(s % 60)}s`;
  return `${s}s`;
}

/** `1.2k`, `34k`, `1.5M`. */
export function compact(n: number): string {
  if (!Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a < 1000) return String(Math.round(n * 10) / 10);
  if (a < 10_000) return `${(n / 1000).toFixed(1)}k`;
  if (a < 1_000_000) return `${Math.round(n / 1000)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

export function usd(v: unknown): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  if (v !== 0 && Math.abs(v) < 0.01) return `$${v.toFixed(4)}`;
  return `$${v.toFixed(2)}`;
}

/** Cut to `width` columns with an ellipsis (the monitor's text is ASCII plus a few one-column glyphs). */
export function fit(text: string, width: number): string {
  if (width <= 0) return '';
  if (text.length <= width) return text;
  return width === 1 ? '…' : `${text.slice(0, width - 1)}…`;
}

/** Join the non-empty parts while they fit in `width` (the first always, cut if need be). */
export function fitParts(parts: string[], width: number, sep = ' '): string {
  const [head, ...rest] = parts.filter(Boolean);
  let out = head ?? '';
  for (const p of rest) {
    if (out.length + sep.length + p.length > width) break;
    out += sep + p;
  }
  return fit(out, width);
}

/** Keys shown first in an event summary: what happened and to whom. */
const FIRST = [
  'agent_id',
  'name',
  'tool',
  'status',
  'plugin',
  'scope',
  'code',
  'message',
  'count',
  'exec_id',
  'session_id',
  'request_id',
  'id',
];
/** Keys shown last: ids nobody reads on a narrow screen. */
const LAST = new Set(['turn_id', 'tool_use_id', 'socket', 'context']);

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{6}([0-9a-f]{6})/g;

/**
 * Shorten the UUIDs inside an id to their last 6 hex digits: `t-…9f3c2a.s1` reads better than 40
 * characters. The end, because the head of a time-ordered id (UUIDv7) is its timestamp, the same for
 * every id made in the same minute; the tail is random and tells them apart.
 */
export function shortId(id: string): string {
  return id.replace(UUID, '…$1');
}

/**
 * Cut to `width` columns keeping both ends, the ellipsis in the middle: names that share a prefix
 * (`debate-1a2b-researcher`, `debate-1a2b-critic`) differ at their end, so the end must stay visible.
 */
export function fitMiddle(text: string, width: number): string {
  if (width <= 0) return '';
  if (text.length <= width) return text;
  if (width <= 2) return fit(text, width);
  const head = Math.ceil((width - 1) / 3);
  return `${text.slice(0, head)}…${text.slice(text.length - (width - 1 - head))}`;
}

/** One line `k=v k=v …` from an event's data, the telling keys first, long values shortened. */
export function summarize(data: Record<string, unknown>, width = 200): string {
  const keys = Object.keys(data);
  const ordered = [
    ...FIRST.filter((k) => k in data),
    ...keys.filter((k) => !FIRST.includes(k) && !LAST.has(k)),
    ...keys.filter((k) => LAST.has(k)),
  ];
  let out = '';
  for (const k of ordered) {
    const v = data[k];
    if (v === undefined || v === null) continue;
    let s: string;
    if (typeof v === 'string') {
      const t = shortId(v);
      s = t.length > 40 ? JSON.stringify(`${t.slice(0, 39)}…`) : /[\s="]/.test(t) || t === '' ? JSON.stringify(t) : t;
    } else if (typeof v === 'number' || typeof v === 'boolean') s = String(v);
    else {
      const j = shortId(JSON.stringify(v));
      s = j.length > 30 ? `${j.slice(0, 29)}…` : j;
    }
    out += (out ? ' ' : '') + `${k}=${s.replace(/\n/g, '⏎')}`;
    if (out.length >= width) break;
  }
  return fit(out, width);
}

/** A gauge `█████░░░░░` of `width` cells for a percentage (clamped). */
export function bar(percent: number, width: number): string {
  const w = Math.max(1, width);
  const filled = Math.max(0, Math.min(w, Math.round((percent / 100) * w)));
  return '█'.repeat(filled) + '░'.repeat(w - filled);
}

/** Pretty JSON for the details view: the lines from `offset` (clamped), each cut to `width`. */
export function prettyLines(
  value: unknown,
  width: number,
  rows: number,
  offset = 0,
): { lines: string[]; offset: number; total: number } {
  const all = (JSON.stringify(value, null, 2) ?? 'null').split('\n');
  const start = Math.max(0, Math.min(offset, all.length - rows));
  return {
    lines: all.slice(start, start + Math.max(0, rows)).map((l) => fit(l, width)),
    offset: start,
    total: all.length,
  };
}
