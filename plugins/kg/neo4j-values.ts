/**
 * Turning what neo4j-driver returns into plain JSON: graph nodes into the kg node shape, and
 * whatever a raw Cypher query returns (paths, temporals, points, big integers) into values that can
 * cross the socket.
 */
import neo4j, { Neo4jError, type Node, type Relationship } from 'neo4j-driver';
import { DaemonError } from '../../client/errors.js';
import type { KgNode, Properties } from './model.js';

/** The label every graph node carries in Neo4j, so one uniqueness constraint covers all of them. */
export const BASE_LABEL = 'KgNode';

export function nodeFromNeo4j(n: Node): KgNode {
  const { id, ...properties } = n.properties as Record<string, unknown>;
  return {
    id: String(id),
    label: n.labels.find((l) => l !== BASE_LABEL) ?? BASE_LABEL,
    properties: plainProperties(properties),
  };
}

export function plainProperties(p: Record<string, unknown>): Properties {
  return toPlain(p) as Properties;
}

/** Any driver value → JSON. Integers outside the safe range become strings rather than lose digits. */
export function toPlain(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (typeof v !== 'object') return v;
  if (neo4j.isInt(v)) return v.inSafeRange() ? v.toNumber() : v.toString();
  if (Array.isArray(v)) return v.map(toPlain);
  if (neo4j.isNode(v)) {
    const n = v as Node;
    if (n.labels.includes(BASE_LABEL)) return nodeFromNeo4j(n);
    return { element_id: n.elementId, labels: n.labels, properties: toPlain(n.properties) };
  }
  if (neo4j.isRelationship(v)) return relationshipToPlain(v as Relationship);
  if (neo4j.isPath(v)) {
    const p = v as { segments: Array<{ start: Node; relationship: Relationship; end: Node }>; start: Node };
    return {
      nodes: [p.start, ...p.segments.map((s) => s.end)].map(toPlain),
      relationships: p.segments.map((s) => ({
        ...relationshipToPlain(s.relationship),
        from: idOf(s.relationship.startNodeElementId, s),
        to: idOf(s.relationship.endNodeElementId, s),
      })),
    };
  }
  if (neo4j.isPoint(v)) return { srid: toPlain(v.srid), x: v.x, y: v.y, ...(v.z === undefined ? {} : { z: v.z }) };
  if (
    neo4j.isDate(v) ||
    neo4j.isDateTime(v) ||
    neo4j.isLocalDateTime(v) ||
    neo4j.isTime(v) ||
    neo4j.isLocalTime(v) ||
    neo4j.isDuration(v)
  )
    return v.toString();
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, toPlain(x)]));
}

function relationshipToPlain(r: Relationship): Record<string, unknown> {
  return {
    type: r.type,
    properties: toPlain(r.properties),
    element_id: r.elementId,
    start_element_id: r.startNodeElementId,
    end_element_id: r.endNodeElementId,
  };
}

/** Inside a path the endpoints are known, so a relationship can name them by kg id. */
function idOf(elementId: string, s: { start: Node; end: Node }): string | null {
  const n = s.start.elementId === elementId ? s.start : s.end.elementId === elementId ? s.end : null;
  const id = n?.properties.id;
  return typeof id === 'string' ? id : null;
}

/** True when the error means "the server is not there" rather than "the query is wrong". */
export function isConnectivityError(e: unknown): boolean {
  if (!(e instanceof Neo4jError)) return false;
  return (
    e.code === 'ServiceUnavailable' ||
    e.code === 'SessionExpired' ||
    e.code === neo4j.error.SERVICE_UNAVAILABLE ||
    e.code === neo4j.error.SESSION_EXPIRED ||
    e.code.startsWith('Neo.ClientError.Security.') ||
    e.code === 'Neo.TransientError.General.DatabaseUnavailable' ||
    e.code === 'Neo.ClientError.Database.DatabaseNotFound'
  );
}

/** Map a server's answer to a raw query into the error catalogue (never branching on message text). */
export function queryError(e: Neo4jError): DaemonError {
  const details = { neo4j_code: e.code };
  if (e.code === 'Neo.ClientError.Statement.AccessMode') {
    return new DaemonError('CONFLICT', 'the query writes; pass write: true to run it in a write transaction', details);
  }
  if (e.code === 'Neo.ClientError.Schema.ConstraintValidationFailed')
    return new DaemonError('CONFLICT', e.message, details);
  if (e.code.startsWith('Neo.ClientError.'))
    return new DaemonError('INVALID_DATA', e.message, {
      ...details,
      issues: [{ path: ['cypher'], message: e.message }],
    });
  return new DaemonError('HANDLER_ERROR', e.message, details);
}
