import { describe, expect, it } from 'vitest';
import { LineReader } from '../../daemon/line-reader.js';

function collect(r: LineReader): string[] {
  const out: string[] = [];
  for (let x = r.next(); x; x = r.next()) out.push(x.kind === 'line' ? x.line.toString() : `TOO_LARGE:${x.bytes}`);
  return out;
}

describe('line reader', () => {
  it('splits lines across chunk boundaries', () => {
    const r = new LineReader(100);
    const big: number[] = [];
    r.push(Buffer.from('{"a":'), (b) => big.push(b));
    expect(collect(r)).toEqual([]);
    r.push(Buffer.from('1}\n{"b":2}\n{"c"'), (b) => big.push(b));
    expect(collect(r)).toEqual(['{"a":1}', '{"b":2}']);
    r.push(Buffer.from(':3}\n'), (b) => big.push(b));
    expect(collect(r)).toEqual(['{"c":3}']);
    expect(big).toEqual([]);
  });

  it('reports an oversized line once and resumes after its newline', () => {
    const r = new LineReader(10);
    const big: number[] = [];
    r.push(Buffer.from('x'.repeat(8)), (b) => big.push(b));
    r.push(Buffer.from('x'.repeat(8)), (b) => big.push(b));
    expect(big).toHaveLength(1);
    r.push(Buffer.from('x'.repeat(1000)), (b) => big.push(b));
    expect(big).toHaveLength(1);
    r.push(Buffer.from('tail\nok\n'), (b) => big.push(b));
    expect(collect(r)).toEqual(['ok']);
  });

  it('flags a complete oversized line that arrived in one chunk', () => {
    const r = new LineReader(10);
    r.push(Buffer.from('y'.repeat(20) + '\nfine\n'), () => undefined);
    expect(collect(r)).toEqual(['TOO_LARGE:20', 'fine']);
  });

  it('keeps unconsumed lines when the consumer pauses', () => {
    const r = new LineReader(100);
    r.push(Buffer.from('1\n2\n3\n'), () => undefined);
    expect(r.next()).toMatchObject({ kind: 'line' });
    r.push(Buffer.from('4\n'), () => undefined);
    expect(collect(r)).toEqual(['2', '3', '4']);
  });
});
