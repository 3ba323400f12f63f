import { describe, expect, it } from 'vitest';
import { PatternIndex, isValidPattern, matchPatterns } from '../../client/pattern-index.js';

describe('pattern index', () => {
  const cases: Array<[pattern: string, event: string, matches: boolean]> = [
    ['completion:result', 'completion:result', true],
    ['completion:result', 'completion:error', false],
    ['completion:*', 'completion:result', true],
    ['completion:*', 'completion:token:delta', false],
    ['completion:**', 'completion:token:delta', true],
    ['completion:**', 'completion:result', true],
    ['completion:*', 'completions:result', false],
    ['completion:**', 'agent:spawn', false],
    ['*', 'anything:at_all', true],
    ['a:b:*', 'a:b:c', true],
    ['a:b:*', 'a:b', false],
    ['a:b:**', 'a:b:c:d', true],
  ];
  it.each(cases)('%s vs %s → %s', (pattern, event, matches) => {
    const idx = new PatternIndex<string>();
    idx.add(pattern, 'sub');
    expect(idx.match(event).includes('sub')).toBe(matches);
  });

  it('delivers once to a subscriber matching through several patterns', () => {
    const idx = new PatternIndex<string>();
    for (const p of ['a:b', 'a:*', 'a:**', '*']) idx.add(p, 'x');
    expect(idx.match('a:b')).toEqual(['x']);
  });

  it('forgets removed subscriptions, including cached matches', () => {
    const idx = new PatternIndex<string>();
    idx.add('a:*', 'x');
    expect(idx.match('a:b')).toEqual(['x']);
    idx.remove('a:*', 'x');
    expect(idx.match('a:b')).toEqual([]);
    expect(idx.size).toBe(0);
  });

  it.each([
    ['*', true],
    ['ns:*', true],
    ['ns:**', true],
    ['ns:action', true],
    ['a:b:*', true],
    ['', false],
    ['**', false],
    ['ns', false],
    ['NS:x', false],
    ['ns:*:x', false],
    ['ns:***', false],
    ['ns:', false],
  ])('pattern %j valid: %s', (p, ok) => expect(isValidPattern(p)).toBe(ok));
});

describe('matchPatterns (a list of patterns as one predicate)', () => {
  const cases: Array<[string[], string, boolean]> = [
    [['sandbox:exec'], 'sandbox:exec', true],
    [['sandbox:exec'], 'sandbox:list', false],
    [['sandbox:*'], 'sandbox:exec', true],
    [['sandbox:*'], 'sandbox:a:b', false],
    [['sandbox:**'], 'sandbox:a:b', true],
    [['sandbox:*'], 'sandboxes:exec', false],
    [['kg:add_nodes', 'agent:**'], 'agent:x:y', true],
    [['kg:add_nodes', 'agent:**'], 'kg:get', false],
    [['*'], 'x:y', true],
    [[], 'x:y', false],
  ];
  it.each(cases)('%j vs %s → %s', (patterns, event, want) => expect(matchPatterns(patterns)(event)).toBe(want));
});
