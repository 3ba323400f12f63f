/**
 * Turn an event's zod schema into the KSI `parameters` shape used by `system:discover`,
 * `system:help` and EVENT_CATALOG.md.
 */
import { z } from 'zod';

export interface ParameterDoc {
  type: string;
  required: boolean;
  description?: string;
  default?: unknown;
  enum?: unknown[];
}

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  items?: JsonSchema;
  allOf?: JsonSchema[];
};

export function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  try {
    return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  } catch {
    // A schema from another zod instance (a hot-reloaded plugin) or with transforms: best effort.
    return {};
  }
}

function typeName(s: JsonSchema): string {
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join('|');
  if (s.const !== undefined) return JSON.stringify(s.const);
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return [...new Set(alts.map(typeName))].join('|');
  if (Array.isArray(s.type)) return s.type.join('|');
  if (s.type === 'array') return s.items ? `${typeName(s.items)}[]` : 'array';
  return s.type ?? 'any';
}

export function describeParameters(schema: z.ZodType): Record<string, ParameterDoc> {
  let js = jsonSchemaOf(schema);
  if (!js.properties && js.allOf)
    js = {
      properties: Object.assign({}, ...js.allOf.map((a) => a.properties ?? {})),
      required: js.allOf.flatMap((a) => a.required ?? []),
    };
  const out: Record<string, ParameterDoc> = {};
  const required = new Set(js.required ?? []);
  for (const [name, p] of Object.entries(js.properties ?? {})) {
    const doc: ParameterDoc = { type: typeName(p), required: required.has(name) && p.default === undefined };
    if (p.description) doc.description = p.description;
    if (p.default !== undefined) doc.default = p.default;
    out[name] = doc;
  }
  return out;
}
