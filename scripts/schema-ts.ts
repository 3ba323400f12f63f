/**
 * A zod schema as TypeScript type text, through its JSON Schema: what the generated client types
 * (client/event-types.ts) are made of. `io: 'input'` for what a caller sends (defaults make a field
 * optional), `'output'` for what the daemon answers.
 */
import { z } from 'zod';

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema | JsonSchema[];
  prefixItems?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  description?: string;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const key = (k: string): string => (IDENT.test(k) ? k : JSON.stringify(k));
const pad = (depth: number): string => '  '.repeat(depth);

function render(s: JsonSchema | boolean | undefined, depth: number): string {
  if (s === undefined || s === true) return 'unknown';
  if (s === false) return 'never';
  if (s.$ref) return 'unknown';
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return [...new Set(alts.map((a) => wrap(render(a, depth))))].join(' | ');
  if (s.allOf) return s.allOf.map((a) => wrap(render(a, depth))).join(' & ');
  if (Array.isArray(s.type)) return s.type.map((t) => render({ ...s, type: t }, depth)).join(' | ');
  switch (s.type) {
    case 'string':
      return 'string';
    case 'number':
    case 'integer':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'null':
      return 'null';
    case 'array': {
      if (s.prefixItems) return `[${s.prefixItems.map((i) => render(i, depth)).join(', ')}]`;
      if (Array.isArray(s.items)) return `[${s.items.map((i) => render(i, depth)).join(', ')}]`;
      return `Array<${render(s.items, depth)}>`;
    }
    case 'object':
      return object(s, depth);
    default:
      return s.properties ? object(s, depth) : 'unknown';
  }
}

const wrap = (t: string): string => (t.includes(' | ') || t.includes(' & ') ? `(${t})` : t);

function object(s: JsonSchema, depth: number): string {
  const props = Object.entries(s.properties ?? {});
  const required = new Set(s.required ?? []);
  const extra = s.additionalProperties;
  const lines = props.map(([k, v]) => {
    const doc = v.description ? `${pad(depth + 1)}/** ${v.description.replace(/\*\//g, '*\\/')} */\n` : '';
    return `${doc}${pad(depth + 1)}${key(k)}${required.has(k) ? '' : '?'}: ${render(v, depth + 1)};`;
  });
  // Passthrough objects (and records) take keys beyond the named ones.
  if (extra !== undefined && extra !== false)
    lines.push(`${pad(depth + 1)}[key: string]: ${extra === true ? 'unknown' : render(extra, depth + 1)};`);
  else if (extra === undefined && props.length === 0) lines.push(`${pad(depth + 1)}[key: string]: unknown;`);
  return lines.length ? `{\n${lines.join('\n')}\n${pad(depth)}}` : 'Record<string, never>';
}

/** TypeScript type text for a schema; `unknown` when it cannot be expressed in JSON Schema. */
export function schemaToTs(schema: z.ZodType, io: 'input' | 'output', depth = 0): string {
  let js: JsonSchema;
  try {
    js = z.toJSONSchema(schema, { io, unrepresentable: 'any', cycles: 'ref', reused: 'inline' }) as JsonSchema;
  } catch {
    return 'unknown';
  }
  return render(js, depth);
}
