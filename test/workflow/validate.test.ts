/** Definitions and templates: every validation error names its step; templates are look-ups, never code. */
import { describe, expect, it } from 'vitest';
import { checkDefinition, resolveInputs, validateDefinition, type Issue } from '../../plugins/workflow/validate.js';
import { lookup, parsePath, render, truthy } from '../../plugins/workflow/template.js';
import { jsonInReply, taskKey, backoffMs } from '../../plugins/workflow/task.js';

const env = {
  hasEvent: (e: string) => ['test:op', 'kg:add_nodes', 'completion:request'].includes(e),
  hasProfile: (p: string) => p === 'researcher',
};
const ok = { id: 'a', event: 'test:op' };
const def = (steps: unknown[], extra: Record<string, unknown> = {}) => ({ name: 'w', steps, ...extra });
const issuesOf = (raw: unknown): Issue[] => {
  const r = checkDefinition(raw, env);
  return r.ok ? [] : r.issues;
};

describe('validation', () => {
  const cases: Array<[string, unknown, { step: string | null; message: RegExp }]> = [
    [
      'a cycle',
      def([
        { id: 'a', event: 'test:op', needs: ['c'] },
        { id: 'b', event: 'test:op', needs: ['a'] },
        { id: 'c', event: 'test:op', needs: ['b'] },
      ]),
      { step: 'a', message: /cycle: a → c → b → a/ },
    ],
    [
      'a step needing itself',
      def([{ id: 'a', event: 'test:op', needs: ['a'] }]),
      { step: 'a', message: /cannot need itself/ },
    ],
    [
      'an unknown need',
      def([ok, { id: 'b', event: 'test:op', needs: ['zz'] }]),
      { step: 'b', message: /needs unknown step "zz"/ },
    ],
    [
      'a need named twice',
      def([ok, { id: 'b', event: 'test:op', needs: ['a', 'a'] }]),
      { step: 'b', message: /needs "a" twice/ },
    ],
    ['an unknown event', def([{ id: 'x', event: 'nope:thing' }]), { step: 'x', message: /unknown event "nope:thing"/ }],
    [
      'an ill-formed event name',
      def([{ id: 'x', event: 'Not An Event' }]),
      { step: 'x', message: /not an event name/ },
    ],
    [
      'an unknown profile',
      def([{ id: 'x', agent: { profile: 'ghost', message: 'hi' } }]),
      { step: 'x', message: /unknown agent profile "ghost"/ },
    ],
    ['a duplicate step id', def([ok, ok]), { step: 'a', message: /used twice/ }],
    ['no action', def([{ id: 'x' }]), { step: 'x', message: /one of event, agent or wait/ }],
    [
      'two actions',
      def([{ id: 'x', event: 'test:op', wait: { prompt: 'p' } }]),
      { step: 'x', message: /exactly one of event, agent or wait/ },
    ],
    [
      'data without an event',
      def([{ id: 'x', wait: { prompt: 'p' }, data: {} }]),
      { step: 'x', message: /data belongs to an event step/ },
    ],
    [
      'output json on an event step',
      def([{ ...ok, output: 'json' }]),
      { step: 'a', message: /output: json applies to agent steps/ },
    ],
    [
      'concurrency without foreach',
      def([{ ...ok, concurrency: 2 }]),
      { step: 'a', message: /concurrency applies to a foreach/ },
    ],
    [
      'a waiting foreach',
      def([{ id: 'w', wait: { prompt: 'p' }, foreach: '{{ inputs.l }}' }], { inputs: { l: { type: 'array' } } }),
      { step: 'w', message: /wait step cannot have foreach/ },
    ],
    [
      'a retrying wait',
      def([{ id: 'w', wait: { prompt: 'p' }, retry: { max_attempts: 2 } }]),
      { step: 'w', message: /wait step cannot retry/ },
    ],
    [
      'profile and agent_id',
      def([{ id: 'x', agent: { profile: 'researcher', agent_id: 'a1', message: 'm' } }]),
      { step: 'x', message: /not both/ },
    ],
    [
      'spawn settings on an existing agent',
      def([{ id: 'x', agent: { agent_id: 'a1', message: 'm', model: 'haiku' } }]),
      { step: 'x', message: /apply to an agent the step spawns/ },
    ],
    ['a misspelt key', def([{ id: 'x', event: 'test:op', need: ['a'] }]), { step: 'x', message: /Unrecognized key/ }],
    ['a bad step id', def([{ id: '9lives', event: 'test:op' }]), { step: '9lives', message: /a letter, then/ }],
    ['a bad on_failure', def([{ ...ok, on_failure: 'retry' }]), { step: 'a', message: /Invalid option/ }],
    [
      'an expression in a template',
      def([{ ...ok, data: { x: '{{ inputs.a + 1 }}' } }], { inputs: { a: { type: 'number' } } }),
      { step: 'a', message: /not a path look-up/ },
    ],
    [
      'a function call in a template',
      def([{ ...ok, data: { x: '{{ process.exit() }}' } }]),
      { step: 'a', message: /not a path look-up/ },
    ],
    [
      'unbalanced braces',
      def([{ ...ok, data: { x: 'a {{ inputs.a' } }], { inputs: { a: {} } }),
      { step: 'a', message: /unbalanced braces/ },
    ],
    ['an empty template', def([{ ...ok, data: { x: '{{ }}' } }]), { step: 'a', message: /empty template/ }],
    [
      'an undeclared input',
      def([{ ...ok, data: { x: '{{ inputs.nope }}' } }]),
      { step: 'a', message: /does not declare under inputs/ },
    ],
    [
      'a step that is not a need',
      def([ok, { id: 'b', event: 'test:op', data: { x: '{{ steps.a.output }}' } }]),
      { step: 'b', message: /not among this step's needs/ },
    ],
    [
      'an unknown step in a template',
      def([{ ...ok, data: { x: '{{ steps.zz.output }}' } }]),
      { step: 'a', message: /unknown step "zz"/ },
    ],
    [
      'a step field that does not exist',
      def([ok, { id: 'b', needs: ['a'], event: 'test:op', data: { x: '{{ steps.a.result }}' } }]),
      { step: 'b', message: /output, status or error/ },
    ],
    [
      'item outside foreach',
      def([{ ...ok, data: { x: '{{ item }}' } }]),
      { step: 'a', message: /only defined in the body of a foreach/ },
    ],
    [
      'item inside when',
      def([{ ...ok, foreach: '{{ inputs.l }}', when: '{{ item }}' }], { inputs: { l: {} } }),
      { step: 'a', message: /only defined in the body of a foreach/ },
    ],
    [
      '[index] outside foreach',
      def([{ ...ok, data: { x: '{{ inputs.l[index] }}' } }], { inputs: { l: {} } }),
      { step: 'a', message: /\[index\] is only defined in the body of a foreach/ },
    ],
    ['an unknown root', def([{ ...ok, data: { x: '{{ env.HOME }}' } }]), { step: 'a', message: /unknown root "env"/ }],
    [
      'a bad run field',
      def([{ ...ok, data: { x: '{{ run.secret }}' } }]),
      { step: 'a', message: /run has id, workflow and key/ },
    ],
    [
      'foreach that is not one template',
      def([{ ...ok, foreach: 'items: {{ inputs.l }}' }], { inputs: { l: {} } }),
      { step: 'a', message: /foreach must be exactly one template/ },
    ],
    [
      'when that is not a template',
      def([{ ...ok, when: 'true' }]),
      { step: 'a', message: /when must be exactly one template/ },
    ],
    [
      'a bad template in an agent message',
      def([{ id: 'x', agent: { profile: 'researcher', message: 'do {{ steps.x.output }}' } }]),
      { step: 'x', message: /not among this step's needs/ },
    ],
    [
      'a bad template in a wait prompt',
      def([{ id: 'x', wait: { prompt: '{{ inputs.q }}' } }]),
      { step: 'x', message: /does not declare/ },
    ],
    [
      'an input default of the wrong type',
      def([ok], { inputs: { n: { type: 'integer', default: 'x' } } }),
      { step: null, message: /default of input "n" must be an integer/ },
    ],
    [
      'a bad output template',
      def([ok], { outputs: { r: '{{ item }}' } }),
      { step: null, message: /only defined in the body of a foreach/ },
    ],
    ['no steps', def([]), { step: null, message: /Too small/ }],
    ['a bad workflow name', { name: 'Bad Name', steps: [ok] }, { step: null, message: /lowercase letters/ }],
  ];
  it.each(cases)('refuses %s, naming the step', (_what, raw, want) => {
    const issues = issuesOf(raw);
    expect(issues.length).toBeGreaterThan(0);
    expect(
      issues.some((i) => i.step === want.step && want.message.test(i.message)),
      JSON.stringify(issues),
    ).toBe(true);
  });

  it('answers INVALID_DATA whose message names the step, with every issue in the details', () => {
    try {
      validateDefinition(def([ok, { id: 'b', event: 'nope:x', needs: ['zz'] }]), env);
      expect.unreachable();
    } catch (e) {
      const err = e as { code: string; message: string; details: { issues: Issue[] } };
      expect(err.code).toBe('INVALID_DATA');
      expect(err.message).toMatch(/step "b": /);
      expect(err.details.issues.map((i) => i.step)).toEqual(['b', 'b']);
    }
  });

  it('accepts a full definition: needs through ancestors, foreach with item and index, when, run fields, outputs', () => {
    const d = validateDefinition(
      def(
        [
          { id: 'a', event: 'test:op' },
          {
            id: 'b',
            needs: ['a'],
            event: 'kg:add_nodes',
            foreach: '{{ steps.a.output.items }}',
            concurrency: 4,
            data: { nodes: [{ id: '{{ run.id }}-{{ index }}', label: 'X', properties: { v: '{{ item.v }}' } }] },
          },
          {
            id: 'c',
            needs: ['b'],
            agent: {
              profile: 'researcher',
              message: 'see {{ steps.a.output }} and {{ steps.b.output }} ({{ run.key }})',
            },
            output: 'json',
            when: '{{ inputs.go }}',
            retry: { max_attempts: 3, backoff_s: 2 },
            timeout_s: 60,
            on_failure: 'replan',
          },
          { id: 'd', needs: ['c'], wait: { prompt: 'approve {{ steps.c.output.title }}?' }, timeout_s: 3600 },
        ],
        { inputs: { go: { type: 'boolean', default: true } }, outputs: { report: '{{ steps.c.output }}' } },
      ),
      env,
    );
    expect(d.steps.map((s) => s.on_failure)).toEqual(['fail', 'fail', 'replan', 'fail']);
  });
});

describe('inputs', () => {
  const d = validateDefinition(
    def([ok], {
      inputs: {
        q: { type: 'string', required: true },
        n: { type: 'integer', default: 3 },
        l: { type: 'array' },
        b: { type: 'boolean' },
      },
    }),
  );
  it('fills defaults, converts command-line strings, refuses unknown, missing and mistyped inputs', () => {
    expect(resolveInputs(d, { q: 'x', n: '7', l: '[1,2]', b: 'true' })).toEqual({ q: 'x', n: 7, l: [1, 2], b: true });
    expect(resolveInputs(d, { q: 'x' })).toEqual({ q: 'x', n: 3 });
    expect(() => resolveInputs(d, {})).toThrow(/input "q" is required/);
    expect(() => resolveInputs(d, { q: 'x', zz: 1 })).toThrow(/has no input "zz"/);
    expect(() => resolveInputs(d, { q: 'x', n: 'seven' })).toThrow(/must be an integer/);
  });
});

describe('templates', () => {
  const scope = {
    inputs: { a: [10, { b: 'deep' }], s: 'str', z: 0 },
    steps: { x: { output: { items: ['p', 'q'] } } },
    item: { v: 1 },
  };
  it.each([
    ['{{ inputs.a }}', [10, { b: 'deep' }]],
    ['{{ inputs.a[1].b }}', 'deep'],
    ['{{ inputs.a.1.b }}', 'deep'],
    ['{{steps.x.output.items[1]}}', 'q'],
    ['n={{ inputs.a[0] }}, s={{ inputs.s }}, l={{ steps.x.output.items }}', 'n=10, s=str, l=["p","q"]'],
    ['{{ inputs.missing.deeper }}', undefined],
    ['[{{ inputs.missing }}]', '[]'],
    ['{{ item.v }}', 1],
    ['{{ inputs.toString }}', undefined],
    ['{{ inputs.__proto__ }}', undefined],
  ])('%s → %j', (t, want) => {
    expect(render(t, scope)).toEqual(want);
  });
  it("[index] pairs two lists by the current item's position", () => {
    expect(render('{{ steps.x.output.items[index] }}', { ...scope, index: 1 })).toBe('q');
    expect(render('{{ steps.x.output.items[index] }}', { ...scope, index: 5 })).toBeUndefined();
  });
  it('drops keys that resolve to nothing, keeps list positions as null', () => {
    expect(render({ a: '{{ inputs.none }}', b: ['{{ inputs.none }}', 1] }, scope)).toEqual({ b: [null, 1] });
  });
  it('is truthy like a person would read it', () => {
    expect([true, 1, 'yes', [0], { a: 1 }].every(truthy)).toBe(true);
    expect([false, 0, '', 'false', 'no', null, undefined, [], {}].some(truthy)).toBe(false);
  });
  it('look-ups never reach outside the scope', () => {
    expect(lookup({ inputs: {} }, parsePath('inputs.constructor.name'))).toBeUndefined();
  });
});

describe('task rules', () => {
  it('keys are stable, and long ones are shortened with a hash', () => {
    expect(taskKey('r1', 's', null, 1)).toBe('r1.s.a1');
    expect(taskKey('r1', 's', 4, 2)).toBe('r1.s.4.a2');
    const long = taskKey('r'.repeat(60), 's'.repeat(40), 9999, 3);
    expect(long.length).toBeLessThanOrEqual(90);
    expect(taskKey('r'.repeat(60), 's'.repeat(40), 9999, 3)).toBe(long);
    expect(taskKey('r'.repeat(60), 's'.repeat(40), 9998, 3)).not.toBe(long);
  });
  it('finds the JSON in a reply', () => {
    expect(jsonInReply('{"a":1}')).toEqual({ a: 1 });
    expect(jsonInReply('Sure!\n```json\n[1, 2]\n```\nDone.')).toEqual([1, 2]);
    expect(jsonInReply('The answer is {"ok": true} as requested.')).toEqual({ ok: true });
    expect(() => jsonInReply('no json here')).toThrow(/no JSON value/);
  });
  it('backs off exponentially with a cap', () => {
    expect([2, 3, 4, 5].map((n) => backoffMs({ backoff_s: 1 }, n))).toEqual([1000, 2000, 4000, 8000]);
    expect(backoffMs({ backoff_s: 1, max_backoff_s: 3 }, 5)).toBe(3000);
  });
});
