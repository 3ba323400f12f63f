import { describe, expect, it } from 'vitest';
import { bucketEnd, bucketOf } from '../../plugins/budget/periods.js';

describe('period buckets', () => {
  it('name the UTC day and month of a time, also when times alternate across a boundary', () => {
    const lastOfJan = Date.UTC(2026, 0, 31, 23, 59, 59, 999);
    const firstOfFeb = lastOfJan + 1;
    for (let i = 0; i < 3; i++) {
      expect([bucketOf('daily', lastOfJan), bucketOf('monthly', lastOfJan)]).toEqual(['d:2026-01-31', 'm:2026-01']);
      expect([bucketOf('daily', firstOfFeb), bucketOf('monthly', firstOfFeb)]).toEqual(['d:2026-02-01', 'm:2026-02']);
    }
    expect(bucketOf('total', firstOfFeb)).toBe('total');
    expect(bucketEnd('daily', lastOfJan)).toBe(firstOfFeb);
    expect(bucketEnd('monthly', Date.UTC(2026, 11, 15))).toBe(Date.UTC(2027, 0, 1));
  });
});
