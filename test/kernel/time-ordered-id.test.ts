import { describe, expect, it } from 'vitest';
import { timeOrderedId } from '../../daemon/time-ordered-id.js';

describe('timeOrderedId', () => {
  it('is a UUID of version 7 whose head is the creation time in milliseconds', () => {
    const at = Date.UTC(2026, 11, 1, 18, 0, 0);
    const id = timeOrderedId(at);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(at);
  });

  it('sorts ids made later after ids made earlier, and never repeats', () => {
    const ids = Array.from({ length: 2000 }, (_, i) => timeOrderedId(1_700_000_000_000 + Math.floor(i / 10)));
    const byTime = ids.map((id, i) => [id, Math.floor(i / 10)] as const);
    const sorted = [...byTime].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    expect(sorted.map(([, t]) => t)).toEqual(byTime.map(([, t]) => t).sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
  });
});
