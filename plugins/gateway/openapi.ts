/**
 * The OpenAPI 3.1 document of the gateway, generated from what the daemon answers
 * (`system:discover {schemas: true}`): one `POST /v1/events/<event>` operation per event with its
 * data's JSON Schema as the body, the error statuses of the codes it may answer, and the stream,
 * WebSocket and metrics routes. Schemas' local `$defs` become shared components, so references stay valid.
 */
import { ERROR_CODES, type ErrorCode } from '../../client/errors.js';
import type { EventDoc } from './door.js';
import { httpStatusOf } from './envelope.js';

type Json = Record<string, unknown>;

/** Codes any event can answer with: the router's own, and the gateway's. */
const ALWAYS: ErrorCode[] = [
  'UNKNOWN_EVENT',
  'INVALID_DATA',
  'TIMEOUT',
  'HANDLER_ERROR',
  'SHUTTING_DOWN',
  'LOOP_DETECTED',
  'UNAVAILABLE',
  'BAD_JSON',
  'BAD_FRAME',
  'FRAME_TOO_LARGE',
  'UNAUTHORIZED',
];

const errorRef = { $ref: '#/components/responses/Error' };

/** Move a schema's `$defs` into components under a prefix and point its `$ref`s there. */
function hoist(schema: Json, prefix: string, into: Record<string, Json>): Json {
  const defs = (schema.$defs ?? schema.definitions) as Record<string, Json> | undefined;
  const rewrite = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(rewrite);
    if (!v || typeof v !== 'object') return v;
    const out: Json = {};
    for (const [k, x] of Object.entries(v as Json)) {
      if (k === '$schema' || k === '$defs' || k === 'definitions' || k === '$id') continue;
      if (k === '$ref' && typeof x === 'string') {
        const m = /^#\/(?:\$defs|definitions)\/(.+)$/.exec(x);
        out.$ref = m ? `#/components/schemas/${prefix}${m[1]}` : x === '#' ? `#/components/schemas/${prefix}data` : x;
        continue;
      }
      out[k] = rewrite(x);
    }
    return out;
  };
  for (const [name, def] of Object.entries(defs ?? {})) into[`${prefix}${name}`] = rewrite(def) as Json;
  return rewrite(schema) as Json;
}

const opId = (event: string): string =>
  event.replace(/:(\w)/g, (_, c: string) => c.toUpperCase()).replace(/_(\w)/g, (_, c: string) => c.toUpperCase());

export function buildOpenApi(docs: EventDoc[], info: { version: string; serverUrl?: string }): Json {
  const schemas: Record<string, Json> = {
    ErrorCode: {
      type: 'string',
      enum: Object.keys(ERROR_CODES),
      description: 'Stable error codes; see EVENT_CATALOG.md',
    },
    Error: {
      type: 'object',
      required: ['error'],
      properties: {
        error: {
          type: 'object',
          required: ['code', 'message'],
          properties: {
            code: { $ref: '#/components/schemas/ErrorCode' },
            message: { type: 'string' },
            details: { type: 'object' },
          },
        },
      },
    },
    EventFrame: {
      type: 'object',
      description:
        'An event as the socket pushes it; the data of each Server-Sent Event and of WebSocket event messages',
      required: ['kind', 'event', 'data', 'seq', 'timestamp'],
      properties: {
        kind: { const: 'event' },
        event: { type: 'string' },
        data: { type: 'object' },
        seq: { type: 'integer' },
        timestamp: { type: 'number', description: 'Unix seconds' },
        context: { type: 'object' },
        subscription: { type: ['string', 'null'] },
      },
    },
  };
  const paths: Record<string, Json> = {};
  const tags = new Set<string>();
  for (const d of [...docs].sort((a, b) => (a.event < b.event ? -1 : a.event > b.event ? 1 : 0))) {
    const ns = d.event.slice(0, d.event.indexOf(':'));
    tags.add(ns);
    const key = opId(d.event);
    const body = hoist(d.schema && Object.keys(d.schema).length ? d.schema : { type: 'object' }, `${key}_`, schemas);
    schemas[`${key}_data`] = body;
    const codes = [...new Set([...ALWAYS, ...(d.errors.filter((c) => c in ERROR_CODES) as ErrorCode[])])];
    const responses: Json = {
      '200': {
        description: "The event's answer",
        content: {
          'application/json': {
            schema: { type: 'object', required: ['data'], properties: { data: { type: 'object' } } },
          },
        },
      },
    };
    for (const status of [...new Set(codes.map(httpStatusOf))].sort()) {
      const which = codes.filter((c) => httpStatusOf(c) === status);
      responses[String(status)] = {
        description: which.join(', '),
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      };
    }
    paths[`/v1/events/${d.event}`] = {
      post: {
        operationId: key,
        tags: [ns],
        summary: d.summary,
        ...(d.description ? { description: d.description } : {}),
        ...(d.emits.length ? { 'x-emits': d.emits } : {}),
        parameters: [
          {
            name: 'timeout_ms',
            in: 'query',
            required: false,
            schema: { type: 'integer', minimum: 1 },
            description: `Deadline of the request (default ${d.default_timeout_ms ?? 30000} ms)`,
          },
        ],
        requestBody: {
          required: false,
          content: { 'application/json': { schema: { $ref: `#/components/schemas/${key}_data` } } },
        },
        responses,
      },
    };
  }
  paths['/v1/stream'] = {
    get: {
      operationId: 'stream',
      tags: ['gateway'],
      summary:
        "Server-Sent Events: every event matching the patterns; id = seq, Last-Event-ID resumes from the router's history",
      parameters: [
        {
          name: 'patterns',
          in: 'query',
          schema: { type: 'string', default: '*' },
          description: 'Comma-separated patterns: "ns:action", "ns:*", "ns:**" or "*"',
        },
        {
          name: 'max_rate',
          in: 'query',
          schema: { type: 'integer', minimum: 1 },
          description: 'At most this many events a second; the rest are counted in monitor:skipped',
        },
        { name: 'Last-Event-ID', in: 'header', schema: { type: 'string' }, description: 'Resume after this seq' },
      ],
      responses: {
        '200': {
          description: 'An event stream whose messages carry EventFrame JSON',
          content: { 'text/event-stream': { schema: { type: 'string' } } },
        },
        '400': errorRef,
        '401': errorRef,
        '429': errorRef,
      },
    },
  };
  paths['/v1/ws'] = {
    get: {
      operationId: 'websocket',
      tags: ['gateway'],
      summary:
        'WebSocket: the socket protocol, one JSON frame per message (requests, answers, monitor:subscribe and its events)',
      responses: { '101': { description: 'Switching protocols' }, '401': errorRef },
    },
  };
  paths['/v1/openapi.json'] = {
    get: {
      operationId: 'openapi',
      tags: ['gateway'],
      summary: 'This document',
      responses: {
        '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } },
        '401': errorRef,
      },
    },
  };
  paths['/metrics'] = {
    get: {
      operationId: 'metrics',
      tags: ['gateway'],
      summary: 'Prometheus metrics',
      responses: {
        '200': { description: 'Prometheus text exposition', content: { 'text/plain': { schema: { type: 'string' } } } },
        '401': errorRef,
      },
    },
  };
  paths['/healthz'] = {
    get: {
      operationId: 'healthz',
      tags: ['gateway'],
      summary: 'Liveness, without auth',
      security: [],
      responses: {
        '200': { description: 'The gateway serves', content: { 'application/json': { schema: { type: 'object' } } } },
      },
    },
  };
  tags.add('gateway');
  return {
    openapi: '3.1.0',
    info: {
      title: 'agentd gateway',
      version: info.version,
      description: 'Every event of the daemon over HTTP. Errors carry a stable code; see the Error schema.',
    },
    ...(info.serverUrl ? { servers: [{ url: info.serverUrl }] } : {}),
    security: [{ bearer: [] }],
    tags: [...tags].sort().map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas,
      responses: {
        Error: {
          description: 'A typed error',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
    },
  };
}
