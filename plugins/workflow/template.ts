/**
 * Templates: `{{ path }}` look-ups into a run's values, never code. A path is a root name followed by
 * `.name`, `.0` or `[0]` segments: `inputs.x`, `steps.a.output.items[2].id`, `item`, `index`, `run.id`.
 * Inside a foreach, `[index]` takes the element at the current item's position (to pair the outputs of
 * two foreach steps over the same list: `{{ steps.run.output[index] }}`).
 * A string that is exactly one template takes the value as it is (a list stays a list); a template
 * inside other text is written into it (strings as they are, other values as JSON).
 */

/** One parsed look-up: the root and the segments after it. */
/** The `[index]` segment: the current foreach item's position. */
export const AT_INDEX = Symbol('index');

export interface TemplatePath {
  root: string;
  segments: Array<string | number | typeof AT_INDEX>;
  /** As written, for messages. */
  text: string;
}

export type TemplatePart = string | TemplatePath;

const TEMPLATE_RE = /\{\{([\s\S]*?)\}\}/g;
const IDENT = '[A-Za-z_][A-Za-z0-9_-]*';
const PATH_RE = new RegExp(`^${IDENT}(?:\\.(?:${IDENT}|\\d+)|\\[(?:\\d+|index)\\])*$`);
const SEGMENT_RE = new RegExp(`\\.(${IDENT}|\\d+)|\\[(\\d+|index)\\]`, 'g');

export class TemplateError extends Error {}

/** Parse one `{{ ... }}` body into a path, or throw TemplateError saying why it is not one. */
export function parsePath(body: string): TemplatePath {
  const text = body.trim();
  if (text === '') throw new TemplateError('empty template {{ }}');
  if (!PATH_RE.test(text)) {
    throw new TemplateError(
      `"{{ ${text} }}" is not a path look-up (templates are names joined by dots, such as inputs.topic or steps.a.output.items[0]; no expressions)`,
    );
  }
  const root = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(text)![0];
  const segments: TemplatePath['segments'] = [];
  for (const m of text.slice(root.length).matchAll(SEGMENT_RE)) {
    const name = m[1];
    if (m[2] === 'index') segments.push(AT_INDEX);
    else segments.push(m[2] !== undefined ? Number(m[2]) : /^\d+$/.test(name!) ? Number(name) : name!);
  }
  return { root, segments, text };
}

/**
 * Split a string into literal text and look-ups. A `{{` that opens no template is an error; a `}}`
 * outside one is text (prompts quote JSON, whose objects end in `}}`).
 */
export function parseTemplate(s: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let last = 0;
  for (const m of s.matchAll(TEMPLATE_RE)) {
    const lit = s.slice(last, m.index);
    if (lit.includes('{{')) throw new TemplateError(`unbalanced braces in "${s.slice(0, 80)}"`);
    if (lit) parts.push(lit);
    parts.push(parsePath(m[1]!));
    last = m.index! + m[0].length;
  }
  const tail = s.slice(last);
  if (tail.includes('{{')) throw new TemplateError(`unbalanced braces in "${s.slice(0, 80)}"`);
  if (tail) parts.push(tail);
  return parts;
}

/** True when the string holds a template at all (the cheap test before parsing). */
export const hasTemplate = (s: string): boolean => s.includes('{{');

/** Every look-up in a JSON-like value (strings at any depth), with where it was found. */
export function pathsIn(
  value: unknown,
  where: Array<string | number> = [],
): Array<{ path: TemplatePath; at: Array<string | number> }> {
  const out: Array<{ path: TemplatePath; at: Array<string | number> }> = [];
  const walk = (v: unknown, at: Array<string | number>): void => {
    if (typeof v === 'string') {
      if (!hasTemplate(v)) return;
      for (const p of parseTemplate(v)) if (typeof p !== 'string') out.push({ path: p, at });
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, [...at, i]));
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) walk(x, [...at, k]);
    }
  };
  walk(value, where);
  return out;
}

/** The value at a path, or undefined when any segment is missing. */
export function lookup(scope: Record<string, unknown>, p: TemplatePath): unknown {
  let v: unknown = Object.hasOwn(scope, p.root) ? scope[p.root] : undefined;
  for (const seg of p.segments) {
    if (v === null || v === undefined) return undefined;
    const s = seg === AT_INDEX ? scope.index : seg;
    if (typeof s !== 'string' && typeof s !== 'number') return undefined;
    if (typeof s === 'number') {
      if (!Array.isArray(v)) return undefined;
      v = v[s];
    } else {
      if (typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, s)) return undefined;
      v = (v as Record<string, unknown>)[s];
    }
  }
  return v;
}

const textOf = (v: unknown): string =>
  v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v);

/** Resolve one string. */
export function renderString(s: string, scope: Record<string, unknown>): unknown {
  if (!hasTemplate(s)) return s;
  const parts = parseTemplate(s);
  if (parts.length === 1 && typeof parts[0] !== 'string') return lookup(scope, parts[0]!);
  return parts.map((p) => (typeof p === 'string' ? p : textOf(lookup(scope, p)))).join('');
}

/** Resolve every template in a JSON-like value; keys whose value resolves to undefined are dropped. */
export function render(value: unknown, scope: Record<string, unknown>): unknown {
  if (typeof value === 'string') return renderString(value, scope);
  if (Array.isArray(value))
    return value.map((v) => {
      const r = render(v, scope);
      return r === undefined ? null : r;
    });
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const r = render(v, scope);
      if (r !== undefined) out[k] = r;
    }
    return out;
  }
  return value;
}

/** A `when`: false, null, missing, 0, "", "false", an empty list or object are false; anything else true. */
export function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (typeof v === 'string' && /^(false|no|0)$/i.test(v.trim())) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}
