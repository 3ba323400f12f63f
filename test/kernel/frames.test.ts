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

describe('nesting depth, checked before parsing deeply', () => {
  const nest = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

  it('refuses data nested 20,000 deep as INVALID_DATA naming the path, echoing the envelope', () => {
    const r = parseRequest(
      Buffer.from(`{"event":"agent:spawn","correlation_id":"c-1","data":{"system":"s","metadata":${nest(20_000)}}}`),
      64,
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('INVALID_DATA');
    expect(r.event).toBe('agent:spawn');
    expect(r.correlationId).toBe('c-1');
    const issue = (r.error.details!.issues as Array<{ path: string }>)[0]!;
    // frame (1) → data (2) → metadata (3) → a … : the first level past 64 is where the path ends
    expect(issue.path).toBe(['metadata', ...Array(62).fill('a')].join('.'));
    expect(r.error.details!.max_json_depth).toBe(64);
  });

  it('accepts exactly the limit, refuses one more', () => {
    // the frame is level 1 and data level 2: a value nested n deep inside data reaches level n + 2
    expect(parseRequest(Buffer.from(`{"event":"a:b","data":{"x":${nest(62)}}}`), 64).ok).toBe(true);
    const r = parseRequest(Buffer.from(`{"event":"a:b","data":{"x":${nest(63)}}}`), 64);
    expect(r.ok).toBe(false);
  });

  it('counts no brackets inside strings, escaped quotes included', () => {
    const s = JSON.stringify('[{'.repeat(500) + '\\"' + '['.repeat(500));
    expect(parseRequest(Buffer.from(`{"event":"a:b","data":{"s":${s}}}`), 8).ok).toBe(true);
  });

  it('refuses deep nesting outside data as BAD_FRAME', () => {
    const r = parseRequest(Buffer.from(`{"event":"a:b","extra":${nest(100)}}`), 64);
    expect(!r.ok && r.error.code).toBe('BAD_FRAME');
  });

  it('reports deeply nested invalid JSON as BAD_JSON', () => {
    const r = parseRequest(Buffer.from(`{"event":"a:b","data":{"x":${'['.repeat(1000)}}}`), 64);
    expect(!r.ok && r.error.code).toBe('BAD_JSON');
  });
});
