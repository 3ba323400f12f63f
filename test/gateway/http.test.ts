/**
 * The gateway over HTTP against a real daemon: auth, every status mapping, size limits, CORS,
 * OpenAPI validity (validated by a validator library) and the Prometheus exposition (parsed).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Validator } from '@seriousme/openapi-schema-validator';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { ERROR_CODES, type ErrorCode } from '../../client/errors.js';
import { httpStatusOf } from '../../plugins/gateway/envelope.js';
import { startGateway, type Gateway } from './helpers.js';

let g: Gateway;

beforeAll(async () => {
  g = await startGateway({ gateway: { body_limit_bytes: 4096, cors_origins: ['http://allowed.example'] } });
});
afterAll(async () => {
  await g?.daemon.stop();
});

describe('auth', () => {
  it('refuses a missing token with 401 UNAUTHORIZED and a Bearer challenge', async () => {
    const r = await fetch(`${g.base}/v1/events/system:ping`, { method: 'POST' });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await r.json()).error.code).toBe('UNAUTHORIZED');
  });

  it("refuses a wrong token, also one that shares the right one's start, on every route", async () => {
    for (const token of ['nope', g.token.slice(0, -1), `${g.token}x`, '']) {
      for (const [method, p] of [
        ['POST', '/v1/events/system:ping'],
        ['GET', '/metrics'],
        ['GET', '/v1/openapi.json'],
        ['GET', '/v1/stream'],
      ]) {
        const r = await fetch(g.base + p, { method, headers: { authorization: `Bearer ${token}` } });
        expect(r.status, `${method} ${p} with "${token}"`).toBe(401);
        await r.body?.cancel();
      }
    }
  });

  it('lets the right token in, and /healthz and the dashboard page without one', async () => {
    expect((await g.post('system:ping')).status).toBe(200);
    expect((await fetch(`${g.base}/healthz`)).status).toBe(200);
    const page = await fetch(`${g.base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
  });

  it('writes a generated token 0600 under run/ when none is configured', async () => {
    const other = await startGateway({ configuredToken: false });
    try {
      const file = path.join(other.daemon.home, 'run', 'gateway.token');
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      const token = fs.readFileSync(file, 'utf8').trim();
      expect(token.length).toBeGreaterThanOrEqual(32);
      expect(
        (
          await fetch(`${other.base}/v1/events/system:ping`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}` },
          })
        ).status,
      ).toBe(200);
      expect((await other.post('system:ping')).status).toBe(401);
      const st = await other.daemon.client.request<Record<string, unknown>>('gateway:status');
      expect(JSON.stringify(st)).not.toContain(token);
    } finally {
      await other.daemon.stop();
    }
  });
});

describe('POST /v1/events/<event>', () => {
  it('answers {data} with 200', async () => {
    const r = await g.post('system:ping', {});
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ data: { pong: true } });
  });

  it("maps every error code to the contract's status", async () => {
    const expected: Record<string, number> = {
      INVALID_DATA: 400,
      NOT_FOUND: 404,
      UNKNOWN_EVENT: 404,
      CONFLICT: 409,
      BUDGET_EXCEEDED: 402,
      OVERLOADED: 429,
      UNAVAILABLE: 503,
      SHUTTING_DOWN: 503,
      TIMEOUT: 504,
      HANDLER_ERROR: 500,
      LOOP_DETECTED: 500,
      CANCELLED: 500,
    };
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const r = await g.post('fix:fail', { code });
      const body = await r.json();
      expect(body.error.code, code).toBe(code);
      expect(r.status, code).toBe(httpStatusOf(code));
      if (code in expected) expect(r.status, code).toBe(expected[code]);
    }
    const thrown = await g.post('fix:fail', { code: 'THROW' });
    expect(thrown.status).toBe(500);
    expect((await thrown.json()).error.code).toBe('HANDLER_ERROR');
  });

  it("gives the router's own answers the same statuses", async () => {
    const cases: Array<[string, unknown, number, string]> = [
      ['kg:get', { id: 'absent' }, 404, 'NOT_FOUND'],
      ['kg:get', { id: 7 }, 400, 'INVALID_DATA'],
      ['system:pnig', {}, 404, 'UNKNOWN_EVENT'],
      ['kg:query', { cypher: 'RETURN 1' }, 409, 'CONFLICT'],
      ['fix:sleep', { ms: 2000 }, 504, 'TIMEOUT'],
    ];
    for (const [event, data, status, code] of cases) {
      const r = await g.post(event === 'fix:sleep' ? `${event}?timeout_ms=100` : event, data);
      const body = await r.json();
      expect([r.status, body.error.code], event).toEqual([status, code]);
    }
    const unknown = await (await g.post('system:pnig')).json();
    expect(unknown.error.details.suggestions).toContain('system:ping');
  });

  it('does not reach kernel-internal events', async () => {
    const r = await g.post('plugin:snapshot', {});
    expect(r.status).toBe(404);
    expect((await r.json()).error.code).toBe('UNKNOWN_EVENT');
  });

  it('refuses bodies that are not a JSON object, and an empty body is {}', async () => {
    expect((await g.post('system:ping', '{nope')).status).toBe(400);
    expect((await (await g.post('system:ping', '{nope')).json()).error.code).toBe('BAD_JSON');
    expect((await (await g.post('system:ping', '[1]')).json()).error.code).toBe('BAD_FRAME');
    expect((await g.post('system:ping', '')).status).toBe(200);
    expect((await (await g.post('Not-An-Event', {})).json()).error.code).toBe('BAD_FRAME');
  });

  it('refuses a body over the limit with 413 FRAME_TOO_LARGE and keeps serving', async () => {
    const r = await g.post('system:ping', { pad: 'x'.repeat(5000) });
    expect(r.status).toBe(413);
    expect((await r.json()).error.code).toBe('FRAME_TOO_LARGE');
    expect((await g.post('system:ping', { pad: 'x'.repeat(1000) })).status).toBe(200);
  });

  it('answers unknown routes with 404 NOT_FOUND', async () => {
    const r = await g.get('/v2/nothing');
    expect(r.status).toBe(404);
    expect((await r.json()).error.code).toBe('NOT_FOUND');
  });
});

describe('CORS', () => {
  it('allows only the configured origins', async () => {
    const ok = await fetch(`${g.base}/v1/events/system:ping`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://allowed.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(ok.headers.get('access-control-allow-origin')).toBe('http://allowed.example');
    const other = await g.post('system:ping', {}, { headers: { origin: 'http://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('sends no CORS headers when none are configured', async () => {
    const plain = await startGateway();
    try {
      const r = await plain.post('system:ping', {}, { headers: { origin: 'http://allowed.example' } });
      expect(r.status).toBe(200);
      expect(r.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await plain.daemon.stop();
    }
  });
});

describe('GET /v1/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document with one operation per event', async () => {
    const r = await g.get('/v1/openapi.json');
    expect(r.status).toBe(200);
    const doc = await r.json();
    const v = new Validator();
    const res = await v.validate(doc);
    expect(res.errors ?? []).toEqual([]);
    expect(res.valid).toBe(true);
    expect(doc.openapi).toBe('3.1.0');
    const discover = await g.daemon.client.request<{ total: number }>('system:discover');
    const ops = Object.keys(doc.paths).filter((p) => p.startsWith('/v1/events/'));
    expect(ops.length).toBe(discover.total);
    const addNodes = doc.paths['/v1/events/kg:add_nodes'].post;
    const body = doc.components.schemas[addNodes.requestBody.content['application/json'].schema.$ref.split('/').pop()];
    expect(body.required).toContain('nodes');
    expect(Object.keys(addNodes.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '404', '503', '504']));
  });
});

describe('GET /metrics', () => {
  it("exposes Prometheus text that a parser reads, with the operators' series", async () => {
    await g.post('system:ping', {});
    await g.post('kg:get', { id: 'absent' });
    await g.post('kg:add_nodes', {
      nodes: [
        { id: 'm1', label: 'Paper' },
        { id: 'm2', label: 'Concept' },
      ],
    });
    const r = await g.get('/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await r.text();
    const families = parsePrometheusTextFormat(text);
    const byName = new Map(families.map((f) => [f.name, f]));
    const value = (name: string, labels: Record<string, string> = {}) => {
      const m = byName.get(name)?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
      return m ? Number(m.value ?? m.count) : undefined;
    };
    expect(
      value('agentd_gateway_requests_total', { event: 'system:ping', code: 'OK', transport: 'http' }),
    ).toBeGreaterThanOrEqual(1);
    expect(value('agentd_gateway_requests_total', { event: 'kg:get', code: 'NOT_FOUND' })).toBeGreaterThanOrEqual(1);
    expect(byName.get('agentd_gateway_request_duration_seconds')?.type).toBe('HISTOGRAM');
    // The router's own counters: every request it answered, the gateway's clients' among them.
    expect(
      value('agentd_requests_total', { event: 'system:ping', origin: 'client', code: 'OK' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      value('agentd_requests_total', { event: 'kg:get', origin: 'client', code: 'NOT_FOUND' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      value('agentd_requests_total', { event: 'system:health', origin: 'plugin', code: 'OK' }),
    ).toBeGreaterThanOrEqual(1);
    const router = byName.get('agentd_request_duration_seconds');
    expect(router?.type).toBe('HISTOGRAM');
    // (The parser drops a histogram's labels, _sum and _count: those are read from the text.)
    const line = (series: string) =>
      Number(new RegExp(`^${series.replace(/[{}+]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    const pings = line('agentd_request_duration_seconds_count{event="system:ping",origin="client"}');
    expect(pings).toBeGreaterThanOrEqual(1);
    expect(line('agentd_request_duration_seconds_bucket{event="system:ping",origin="client",le="+Inf"}')).toBe(pings);
    expect(line('agentd_request_duration_seconds_bucket{event="system:ping",origin="client",le="1"}')).toBe(pings);
    expect(line('agentd_request_duration_seconds_sum{event="system:ping",origin="client"}')).toBeLessThan(pings);
    expect(value('agentd_socket_events_dropped_total')).toBe(0);
    expect(value('agentd_socket_dropped_notices_total')).toBe(0);
    expect(value('agentd_kg_nodes')).toBeGreaterThanOrEqual(2);
    expect(value('agentd_kg_nodes_by_label', { label: 'Paper' })).toBeGreaterThanOrEqual(1);
    expect(value('agentd_plugin_status', { plugin: 'kg', status: 'ok' })).toBe(1);
    expect(value('agentd_plugin_status', { plugin: 'kg', status: 'failed' })).toBe(0);
    expect(value('agentd_healthy')).toBeDefined();
    expect(value('agentd_gateway_clients', { transport: 'sse' })).toBe(0);
    expect(value('agentd_probe_success', { probe: 'kg' })).toBe(1);
    expect(value('agentd_events_total')).toBeGreaterThan(0);
    for (const name of [
      'agentd_completion_queue',
      'agentd_gateway_requests_in_flight',
      'agentd_subscribers',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(byName.has(name), name).toBe(true);
    }
  });
});

describe('the Grafana dashboard (docs/grafana/agentd.json)', () => {
  it('queries only series that /metrics exposes', async () => {
    const dash = JSON.parse(
      fs.readFileSync(path.join(import.meta.dirname, '..', '..', 'docs', 'grafana', 'agentd.json'), 'utf8'),
    );
    const exprs: string[] = dash.panels.flatMap((p: { targets?: Array<{ expr: string }> }) =>
      (p.targets ?? []).map((t) => t.expr),
    );
    const used = new Set(
      exprs
        .flatMap((e) => e.match(/\b(?:agentd|nodejs|process)_[a-z0-9_]+/g) ?? [])
        .map((n) => n.replace(/_(bucket|sum|count)$/, '')),
    );
    const exposed = new Set(parsePrometheusTextFormat(await (await g.get('/metrics')).text()).map((f) => f.name));
    const text = await (await g.get('/metrics')).text();
    const missing = [...used].filter((n) => !exposed.has(n) && !text.includes(`# TYPE ${n} `));
    expect(missing).toEqual([]);
    expect(used.size).toBeGreaterThan(25);
  });
});
