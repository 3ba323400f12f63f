/**
 * The request path's envelopes are checked by hand (decodeRequest, decodeReply); they must accept and
 * refuse exactly what the schemas (requestEnvelope, replyEnvelope) do, with the same error codes.
 */
import { describe, expect, it } from 'vitest';
import { decode, decodeReply, decodeRequest, replyEnvelope, requestEnvelope } from '../../plugins/bridge/envelope.js';

const b = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const ctx = { id: 'i', parent_id: null, root_id: 'i', depth: 0 };
const good = { v: 1, event: 'a:b', data: { x: 1 }, context: ctx, timeout_ms: 1000, from: 'node-a' };

/** Each field of a good envelope replaced by each of a few values, right and wrong. */
function variants(base: Record<string, unknown>, values: Record<string, unknown[]>): unknown[] {
  const out: unknown[] = [base];
  for (const [k, vs] of Object.entries(values)) {
    for (const v of vs) {
      const copy: Record<string, unknown> = { ...base };
      if (v === undefined) delete copy[k];
      else copy[k] = v;
      out.push(copy);
    }
  }
  return out;
}

const ctxValues = [
  ctx,
  { ...ctx, parent_id: 'p' },
  { ...ctx, parent_id: '' },
  { ...ctx, id: '' },
  { ...ctx, id: 'x'.repeat(201) },
  { ...ctx, root_id: 3 },
  { ...ctx, depth: -1 },
  { ...ctx, depth: 1.5 },
  { ...ctx, depth: 1_000_001 },
  { ...ctx, agent_id: 'ag' },
  { ...ctx, agent_id: 'x'.repeat(201) },
  { ...ctx, origin: 'node-b' },
  { ...ctx, origin: 'Node B' },
  { id: 'i', root_id: 'i', depth: 0 },
  null,
  [],
  'ctx',
];

const requests = [
  ...variants(good, {
    v: [1, 2, '1', undefined],
    event: ['a:b', 'a:b:c', 'Nope', 'a', '', 7, undefined],
    data: [{}, { nested: { deep: [1] } }, [], [1], null, 'x', 3, undefined],
    context: ctxValues,
    timeout_ms: [1, 86_400_000, 86_400_001, 0, -5, 1.5, '10', undefined],
    from: ['a', 'node_1', 'A.B', '-a', 'x'.repeat(64), '', undefined],
    job_id: ['job-1', 'job 1', '', 'x'.repeat(121), 5],
    expires_at: [Date.now(), '1', null],
  }),
  // Several things wrong at once: data wins (INVALID_DATA), as the schema's refusal says.
  { ...good, v: 2, data: [1] },
  { ...good, event: 'Nope', data: null, from: 'A.B' },
];

describe('decodeRequest', () => {
  it.each([
    ['not JSON', '{'],
    ['not UTF-8', new Uint8Array([0xff, 0xfe, 0x7b])],
    ['an array', '[]'],
    ['a string', '"x"'],
    ['null', 'null'],
  ])('%s: as the schema', (_n, raw) => {
    const bytes = raw instanceof Uint8Array ? raw : b(raw);
    const a = decodeRequest(bytes);
    const z = decode(bytes, requestEnvelope);
    expect(a.ok).toBe(false);
    expect(a.ok ? null : a.error.code).toBe(z.ok ? null : z.error.code);
  });

  it(`accepts and refuses as requestEnvelope does, with the same codes (${requests.length} envelopes)`, () => {
    for (const r of requests) {
      const a = decodeRequest(b(r));
      const z = decode(b(r), requestEnvelope);
      expect({ r, ok: a.ok, code: a.ok ? null : a.error.code }).toEqual({
        r,
        ok: z.ok,
        code: z.ok ? null : z.error.code,
      });
      // What the schema keeps, the hand check hands on unchanged (data as parsed, {} when absent).
      if (a.ok && z.ok) expect(a.value).toMatchObject(z.value);
    }
  });
});

describe('decodeReply', () => {
  const ok = { ok: true, node: 'b', data: { pong: true } };
  const failed = { ok: false, node: 'b', error: { code: 'TIMEOUT', message: 'late' } };
  const replies = [
    ...variants(ok, {
      ok: [true, 'true', 1, undefined],
      node: ['b', 'B!', undefined],
      data: [{}, [], null, undefined],
      job_id: ['j', 5],
    }),
    ...variants(failed, {
      node: ['b', 'B!', undefined],
      error: [
        { code: 'X', message: 'm' },
        { code: 'X', message: 'm', details: { a: 1 } },
        { code: 'X', message: 'm', details: [] },
        { code: 1, message: 'm' },
        { code: 'X' },
        'err',
        undefined,
      ],
      job_id: ['j', 5],
    }),
  ];
  it(`accepts and refuses as replyEnvelope does (${replies.length} replies)`, () => {
    for (const r of replies) {
      const a = decodeReply(b(r));
      const z = decode(b(r), replyEnvelope);
      expect({ r, ok: a.ok }).toEqual({ r, ok: z.ok });
      if (a.ok && z.ok) expect(a.value).toMatchObject(z.value);
    }
  });
});
