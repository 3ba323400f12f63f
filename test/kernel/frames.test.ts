import { describe, expect, it } from 'vitest';
import { parseRequest } from '../../daemon/frames.js';

const parse = (s: string | Buffer) => parseRequest(Buffer.isBuffer(s) ? s : Buffer.from(s));

describe('request envelope', () => {
  it('accepts the KSI envelope and defaults data', () => {
    const r = parse('{"event":"system:ping","correlation_id":"c-1","timeout_ms":5}');
    expect(r).toEqual({ ok: true, req: { event: 'system:ping', data: {}, correlationId: 'c-1', timeoutMs: 5 } });
  });
  it('keeps a numeric correlation id as a number', () => {
    const r = parse('{"event":"a:b","correlation_id":17}');
    expect(r.ok && r.req.correlationId).toBe(17);
  });
  it.each([
    ['not json', 'BAD_JSON'],
    ['[1,2]', 'BAD_FRAME'],
    ['"str"', 'BAD_FRAME'],
    ['null', 'BAD_FRAME'],
    ['{}', 'BAD_FRAME'],
    ['{"event":""}', 'BAD_FRAME'],
    ['{"event":"nocolon"}', 'BAD_FRAME'],
    ['{"event":"Sys:Ping"}', 'BAD_FRAME'],
    ['{"event":42}', 'BAD_FRAME'],
    ['{"event":"a:b","data":[1]}', 'BAD_FRAME'],
    ['{"event":"a:b","data":"x"}', 'BAD_FRAME'],
    ['{"event":"a:b","timeout_ms":-1}', 'BAD_FRAME'],
    ['{"event":"a:b","timeout_ms":"5"}', 'BAD_FRAME'],
    ['{"event":"a:b","correlation_id":{"x":1}}', 'BAD_FRAME'],
  ])('%s → %s', (line, code) => {
    const r = parse(line);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe(code);
  });
  it('rejects invalid UTF-8 as BAD_JSON', () => {
    const r = parse(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(/UTF-8/);
  });
  it('echoes the correlation id of an ill-formed request', () => {
    const r = parse('{"event":"bad","correlation_id":"c-9"}');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.correlationId).toBe('c-9');
  });
});
