import { describe, expect, it } from 'vitest';
import { planStart, type GraphInput } from '../../daemon/plugin-loader.js';

const p = (name: string, extra: Partial<GraphInput> = {}): GraphInput => ({
  name,
  namespaces: [name],
  dependsOn: [],
  optionalDependsOn: [],
  early: false,
  ...extra,
});

describe('plugin start plan', () => {
  it('orders dependencies first and early plugins before all', () => {
    const { order, failed } = planStart(
      [
        p('agent', { dependsOn: ['completion'] }),
        p('completion', { dependsOn: ['budget'] }),
        p('budget'),
        p('checkpoint', { early: true }),
      ],
      ['system'],
    );
    expect(failed.size).toBe(0);
    expect(order[0]).toBe('checkpoint');
    expect(order.indexOf('budget')).toBeLessThan(order.indexOf('completion'));
    expect(order.indexOf('completion')).toBeLessThan(order.indexOf('agent'));
  });
  it('fails a plugin with a missing dependency, and its dependents', () => {
    const { failed } = planStart([p('a', { dependsOn: ['ghost'] }), p('b', { dependsOn: ['a'] })], []);
    expect(failed.get('a')).toMatchObject({ code: 'DEPENDENCY_MISSING', reason: expect.stringContaining('"ghost"') });
    expect(failed.get('b')).toMatchObject({ code: 'DEPENDENCY_FAILED', reason: expect.stringContaining('"a"') });
  });
  it('names every plugin on a cycle', () => {
    const { failed } = planStart([p('a', { dependsOn: ['b'] }), p('b', { dependsOn: ['a'] }), p('c')], []);
    expect(failed.get('a')?.code).toBe('DEPENDENCY_CYCLE');
    expect(failed.get('b')?.code).toBe('DEPENDENCY_CYCLE');
    expect(failed.has('c')).toBe(false);
  });
  it('refuses a namespace owned by the kernel or another plugin', () => {
    const { failed } = planStart(
      [p('x', { namespaces: ['system'] }), p('y', { namespaces: ['shared'] }), p('z', { namespaces: ['shared'] })],
      ['system'],
    );
    expect(failed.get('x')).toMatchObject({ code: 'NAMESPACE_TAKEN', reason: expect.stringContaining('the kernel') });
    expect(failed.get('z')).toMatchObject({ code: 'NAMESPACE_TAKEN', reason: expect.stringContaining('plugin "y"') });
    expect(failed.has('y')).toBe(false);
  });
  it('ignores an optional dependency that is absent', () => {
    const { failed, order } = planStart([p('agent', { optionalDependsOn: ['sandbox'] })], []);
    expect(failed.size).toBe(0);
    expect(order).toEqual(['agent']);
  });
});
