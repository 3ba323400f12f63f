/**
 * The graph's data model and its validation: what a node, an edge and a property may be. Both
 * backends store exactly this, so a graph moves between them unchanged. Every value that could reach
 * a query text (labels, relationship types, property keys) is an identifier checked here; everything
 * else only ever travels as a query parameter.
 */
import { z } from 'zod';

/** Caps that keep one request's work and memory bounded. */
export const LIMITS = {
  batch: 5_000,
  properties: 64,
  string: 8_192,
  array: 1_024,
  id: 256,
  identifier: 64,
  whereKeys: 16,
  findLimit: 1_000,
  neighborsDepth: 5,
  neighborsLimit: 10_000,
  pathDepth: 15,
  cypher: 65_536,
  queryRows: 10_000,
} as const;

/** Labels and relationship types: a letter, then letters, digits and underscores. */
export const IDENTIFIER_RE = /^[A-Za-z][A-Za-z0-9_]*$/;
/** Property keys may also start with an underscore. */
export const PROPERTY_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Used by the Neo4j backend to find every graph node through one indexed label; not for users. */
export const RESERVED_LABELS = new Set(['KgNode']);
/** `id` is the node's own field, not a property (the Neo4j backend stores it as one). */
export const RESERVED_KEYS = new Set(['id']);

export type Scalar = string | number | boolean;
export type PropertyValue = Scalar | Scalar[];
export type Properties = Record<string, PropertyValue>;

export interface KgNode {
  id: string;
  label: string;
  properties: Properties;
}

export interface KgEdge {
  from: string;
  to: string;
  type: string;
  properties: Properties;
}

/** A node as accepted for writing: the id is generated when absent. */
export interface NodeInput {
  id?: string;
  label: string;
  properties?: Properties;
}

export type EdgeInput = Omit<KgEdge, 'properties'> & { properties?: Properties };

export const identifier = (what: string) =>
  z
    .string()
    .max(LIMITS.identifier, { error: `${what} is at most ${LIMITS.identifier} characters` })
    .regex(IDENTIFIER_RE, { error: `${what} must be an identifier: a letter, then letters, digits or _` });

export const labelSchema = identifier('label')
  .refine((l) => !RESERVED_LABELS.has(l), { error: 'label is reserved' })
  .register(z.globalRegistry, { description: 'Node label, an identifier such as Paper or Concept' });

export const typeSchema = identifier('type').register(z.globalRegistry, {
  description: 'Relationship type, an identifier such as CITES or SUPPORTS',
});

export const nodeIdSchema = z
  .string()
  .min(1, { error: 'id must not be empty' })
  .max(LIMITS.id, { error: `id is at most ${LIMITS.id} characters` });

const propertyKey = z
  .string()
  .max(LIMITS.identifier, { error: `property key is at most ${LIMITS.identifier} characters` })
  .regex(PROPERTY_KEY_RE, { error: 'property key must be an identifier: a letter or _, then letters, digits or _' })
  .refine((k) => !RESERVED_KEYS.has(k), { error: 'property key is reserved (id is the node field)' });

const scalar = z.union([
  z.string().max(LIMITS.string, { error: `strings are at most ${LIMITS.string} characters` }),
  z.number().refine(Number.isFinite, { error: 'numbers must be finite' }),
  z.boolean(),
]);

const VALUE_RULE =
  'a property value is a string, a finite number, a boolean, or an array of one of those (null is not stored: omit the key)';

/** Why `v` is not a storable scalar, or null when it is. */
function scalarProblem(v: unknown): string | null {
  switch (typeof v) {
    case 'string':
      return v.length <= LIMITS.string ? null : `strings are at most ${LIMITS.string} characters`;
    case 'number':
      return Number.isFinite(v) ? null : 'numbers must be finite';
    case 'boolean':
      return null;
    default:
      return VALUE_RULE;
  }
}

/** Why `v` is not a storable property value, or null. Neo4j stores only homogeneous arrays, and the
 *  embedded store keeps the same rule so graphs stay portable. */
export function valueProblem(v: unknown): string | null {
  if (!Array.isArray(v)) return scalarProblem(v);
  if (v.length > LIMITS.array) return `arrays hold at most ${LIMITS.array} items`;
  for (const item of v) {
    const p = scalarProblem(item);
    if (p) return p === VALUE_RULE ? `array items must be strings, finite numbers or booleans` : p;
    if (typeof item !== typeof v[0]) return 'array items must all be of one type';
  }
  return null;
}

/*
 * Properties are checked by hand inside zod rather than as z.record(key, z.union(...)): a union
 * builds an issue for every alternative it rejects, which made validation, not SQLite, the cost of a
 * bulk insert (≈40k nodes/s against ≈250k/s now). The issues and paths are the same.
 */
export const propertyValueSchema = z.custom<PropertyValue>().superRefine((v, ctx) => {
  const p = valueProblem(v);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});

function propertiesProblems(v: unknown): Array<{ path: string[]; message: string }> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return [{ path: [], message: 'properties must be an object' }];
  const out: Array<{ path: string[]; message: string }> = [];
  let count = 0;
  for (const key in v) {
    if (!Object.prototype.hasOwnProperty.call(v, key)) continue;
    count++;
    if (key.length > LIMITS.identifier)
      out.push({ path: [key], message: `property key is at most ${LIMITS.identifier} characters` });
    else if (!PROPERTY_KEY_RE.test(key))
      out.push({
        path: [key],
        message: 'property key must be an identifier: a letter or _, then letters, digits or _',
      });
    else if (RESERVED_KEYS.has(key))
      out.push({ path: [key], message: 'property key is reserved (id is the node field)' });
    const p = valueProblem((v as Record<string, unknown>)[key]);
    if (p) out.push({ path: [key], message: p });
    if (out.length >= 20) break;
  }
  if (count > LIMITS.properties) out.push({ path: [], message: `at most ${LIMITS.properties} properties` });
  return out;
}

export const propertiesSchema = z
  .custom<Properties>()
  .superRefine((v, ctx) => {
    for (const issue of propertiesProblems(v))
      ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
  })
  .register(z.globalRegistry, {
    description:
      'Properties {key: value}: keys are identifiers; values are strings, finite numbers, booleans, or arrays of one of those',
  });

export const nodeInputSchema = z.strictObject({
  id: nodeIdSchema.optional().register(z.globalRegistry, {
    description: 'Node id; generated (a UUID) when absent. Re-adding an id replaces its properties',
  }),
  label: labelSchema,
  properties: propertiesSchema.optional(),
});

export const edgeInputSchema = z.strictObject({
  from: nodeIdSchema.describe('Id of the source node (must exist)'),
  to: nodeIdSchema.describe('Id of the target node (must exist)'),
  type: typeSchema,
  properties: propertiesSchema.optional(),
});

/** Equality filters on properties (all must match). */
export const whereSchema = z
  .record(propertyKey, scalar)
  .refine((w) => Object.keys(w).length <= LIMITS.whereKeys, { error: `at most ${LIMITS.whereKeys} conditions` })
  .register(z.globalRegistry, {
    description: 'Property equality filters, all of which must match, e.g. {"year": 2024}',
  });

/** A batch must not name the same node (or the same edge) twice: which one should win is ambiguous. */
export function duplicateIssues(keys: string[], field: string): Array<{ path: (string | number)[]; message: string }> {
  const seen = new Map<string, number>();
  const issues: Array<{ path: (string | number)[]; message: string }> = [];
  keys.forEach((k, i) => {
    const first = seen.get(k);
    if (first === undefined) seen.set(k, i);
    else issues.push({ path: [field, i], message: `duplicate of item ${first} in the same batch` });
  });
  return issues;
}

/** The identity of an edge: one edge of each type between an ordered pair of nodes. */
export const edgeKey = (e: { from: string; type: string; to: string }): string =>
  JSON.stringify([e.from, e.type, e.to]);

export const isIdentifier = (s: string): boolean => IDENTIFIER_RE.test(s) && s.length <= LIMITS.identifier;
