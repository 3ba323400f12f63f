/** Tables for the bridge's pure parts, and the kernel's fallback route the bridge relies on. */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { DaemonError } from '../../client/errors.js';
import { rootContext } from '../../daemon/call-context.js';
import { Router } from '../../daemon/router.js';
import { z } from 'zod';
import { Subjects, bridgeConfigSchema, patternToSubject } from '../../plugins/bridge/config.js';
import {
  decode,
  encode,
  eventEnvelope,
  replyError,
  requestEnvelope,
  wireContext,
} from '../../plugins/bridge/envelope.js';
import { redactUrl } from '../../plugins/bridge/bridge.js';

describe('subjects', () => {
  it.each([
    ['*', '>'],
    ['agent:*', 'agent.*'],
    ['agent:**', 'agent.>'],
    ['completion:result', 'completion.result'],
    ['a:b:*', 'a.b.*'],
  ])('pattern %s → subject %s', (p, s) => expect(patternToSubject(p)).toBe(s));

  it('names every subject under the prefix', () => {
    const s = new Subjects('agentd', 'host-a');
    expect(s.event('completion:result')).toBe('agentd.ev.completion.result');
    expect(s.request('sandbox:exec')).toBe('agentd.req.sandbox.exec');
    expect(s.serve('sandbox')).toBe('agentd.req.sandbox.>');
    expect(s.direct('host-b', 'system:ping')).toBe('agentd.node.host-b.system.ping');
    expect(s.work('sandbox:exec')).toBe('agentd.work.sandbox.exec');
    expect(s.result('host-a', 'j1')).toBe('agentd.result.host-a.j1');
    expect(s.resultConsumer()).toBe('results_host_a');
    expect(s.workStream).toBe('AGENTD_WORK');
  });
});

describe('config', () => {
  it('is off by default and treats empty values as unset', () => {
    const d = bridgeConfigSchema.parse({});
    expect([d.url, d.node]).toEqual([undefined, undefined]);
    expect(d).toMatchObject({ prefix: 'agentd', subscribe: ['*'], publish: [], serve: [], forward: true });
    const e = bridgeConfigSchema.parse({ url: '', node: '' });
    expect([e.url, e.node]).toEqual([undefined, undefined]);
  });
  it.each([
    [{ node: 'Host.A' }],
    [{ node: 'a b' }],
    [{ publish: ['Bad:Pattern'] }],
    [{ serve: ['sandbox:exec'] }],
    [{ heartbeat_ms: 5 }],
  ])('refuses %j', (section) => expect(bridgeConfigSchema.safeParse(section).success).toBe(false));
  it('never shows credentials', () =>
    expect(redactUrl('nats://user:secret@host:4222,nats://t0ken@h2')).toBe('nats://user:***@host:4222,nats://***@h2'));
});

describe('envelopes from the bus', () => {
  const ctx = { id: 'i', parent_id: null, root_id: 'i', depth: 0 };
  const b = (s: string) => new TextEncoder().encode(s);
  const cases: Array<[string, string, string | null]> = [
    ['not JSON', '{', 'BAD_JSON'],
    ['an array', '[]', 'BAD_FRAME'],
    ['no event', JSON.stringify({ v: 1, data: {}, context: ctx, timeout_ms: 1, from: 'a' }), 'BAD_FRAME'],
    [
      'bad event name',
      JSON.stringify({ v: 1, event: 'Nope', data: {}, context: ctx, timeout_ms: 1, from: 'a' }),
      'BAD_FRAME',
    ],
    [
      'data not an object',
      JSON.stringify({ v: 1, event: 'a:b', data: [1], context: ctx, timeout_ms: 1, from: 'a' }),
      'INVALID_DATA',
    ],
    [
      'negative depth',
      JSON.stringify({ v: 1, event: 'a:b', data: {}, context: { ...ctx, depth: -1 }, timeout_ms: 1, from: 'a' }),
      'BAD_FRAME',
    ],
    [
      'zero timeout',
      JSON.stringify({ v: 1, event: 'a:b', data: {}, context: ctx, timeout_ms: 0, from: 'a' }),
      'BAD_FRAME',
    ],
    [
      'bad node',
      JSON.stringify({ v: 1, event: 'a:b', data: {}, context: ctx, timeout_ms: 1, from: 'A.B' }),
      'BAD_FRAME',
    ],
    ['a good one', JSON.stringify({ v: 1, event: 'a:b', context: ctx, timeout_ms: 1, from: 'a' }), null],
  ];
  it.each(cases)('request: %s', (_name, body, code) => {
    const d = decode(b(body), requestEnvelope);
    if (code === null) expect(d).toMatchObject({ ok: true, value: { data: {} } });
    else expect(d.ok ? null : d.error.code).toBe(code);
  });
  it('round-trips an event with causality, origin set to the sender', () => {
    const c = { id: 'x', parent_id: 'p', root_id: 'r', depth: 3, agent_id: 'ag' };
    const env = {
      v: 1,
      event: 'agent:said',
      data: { t: 1 },
      context: wireContext(c, 'node-a'),
      origin: 'node-a',
      seq: 9,
      timestamp: 1.5,
    };
    const d = decode(encode(env), eventEnvelope);
    expect(d).toEqual({ ok: true, value: env });
    expect(env.context).toEqual({ ...c, origin: 'node-a' });
  });
  it('rebuilds a remote typed error with the node that raised it', () => {
    const e = replyError({ ok: false, node: 'b', error: { code: 'BUDGET_EXCEEDED', message: 'no' } });
    expect(e).toBeInstanceOf(DaemonError);
    expect(e.code).toBe('BUDGET_EXCEEDED');
    expect(e.details).toEqual({ node: 'b' });
    expect(replyError({ ok: false, error: { code: 'MADE_UP', message: 'x' } }).code).toBe('HANDLER_ERROR');
  });
});

describe('kernel fallback route', () => {
  const mk = () => {
    const r = new Router({ log: pino({ level: 'silent' }), maxDepth: 4, historySize: 10, defaultTimeoutMs: 1000 });
    r.register({
      event: 'local:thing',
      plugin: 'local',
      def: { summary: 's', schema: z.object({}), handler: () => ({ local: true }) },
    });
    return r;
  };
  const req = (event: string, depth = 0, ms = 1000) => ({
    event,
    data: {},
    context: { ...rootContext(), depth },
    deadline: Date.now() + ms,
    connectionId: null,
    external: true,
  });

  it('is consulted only for namespaces no local plugin owns', async () => {
    const r = mk();
    const seen: string[] = [];
    r.setFallback({ plugin: 'bridge', handler: async (_d, call) => (seen.push(call.event), { remote: call.event }) });
    expect(await r.dispatch(req('far:away'))).toEqual({ remote: 'far:away' });
    expect(() => r.dispatch(req('local:other'))).toThrow(expect.objectContaining({ code: 'UNKNOWN_EVENT' }));
    expect(r.dispatch(req('local:thing'))).toEqual({ local: true });
    r.unavailableNamespaces.set('broken', 'load failed');
    expect(() => r.dispatch(req('broken:x'))).toThrow(expect.objectContaining({ code: 'UNAVAILABLE' }));
    expect(seen).toEqual(['far:away']);
  });

  it('runs through the loop guard and the deadline, and maps thrown errors', async () => {
    const r = mk();
    r.setFallback({
      plugin: 'bridge',
      handler: (d) => (d.hang ? new Promise(() => undefined) : Promise.reject(new Error('boom'))),
    });
    expect(() => r.dispatch(req('far:away', 5))).toThrow(expect.objectContaining({ code: 'LOOP_DETECTED' }));
    await expect(
      r.dispatch({ ...req('far:away', 0, 50), data: { hang: true } }) as Promise<unknown>,
    ).rejects.toMatchObject({ code: 'TIMEOUT' });
    await expect(r.dispatch(req('far:away')) as Promise<unknown>).rejects.toMatchObject({ code: 'HANDLER_ERROR' });
  });

  it('belongs to one plugin and goes away when cleared', () => {
    const r = mk();
    r.setFallback({ plugin: 'bridge', handler: async () => ({}) });
    expect(() => r.setFallback({ plugin: 'other', handler: async () => ({}) })).toThrow(/already served/);
    r.clearFallback('other');
    expect(r.dispatch(req('far:away'))).toBeInstanceOf(Promise);
    r.clearFallback('bridge');
    expect(() => r.dispatch(req('far:away'))).toThrow(expect.objectContaining({ code: 'UNKNOWN_EVENT' }));
  });
});
