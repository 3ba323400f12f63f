/**
 * Validation of a definition beyond its shape: every step does exactly one thing, needs name steps
 * that exist, the needs form no cycle, events and profiles exist, and every template is a path whose
 * root makes sense where it is used. Each problem names its step; the caller answers INVALID_DATA
 * with all of them.
 */
import { DaemonError } from '../../client/errors.js';
import { definitionSchema, type Definition, type InputSpec, type StepDef } from './definition.js';
import { AT_INDEX, hasTemplate, parseTemplate, pathsIn, TemplateError, type TemplatePath } from './template.js';

export interface Issue {
  /** The step the problem is in (null: the definition as a whole). */
  step: string | null;
  path: Array<string | number>;
  message: string;
}

export interface ValidationEnv {
  /** Does the daemon answer this event? Absent: not checked. */
  hasEvent?: (name: string) => boolean;
  /** Is there an agent profile of this name? Absent: not checked. */
  hasProfile?: (name: string) => boolean;
}

const RUN_FIELDS = new Set(['id', 'workflow', 'key']);

/** Shape first, then meaning. Returns the parsed definition or the issues. */
export function checkDefinition(
  raw: unknown,
  env: ValidationEnv = {},
): { ok: true; definition: Definition } | { ok: false; issues: Issue[] } {
  const parsed = definitionSchema.safeParse(raw);
  if (!parsed.success) {
    const steps = (raw as { steps?: unknown })?.steps;
    const issues = parsed.error.issues.map((i): Issue => {
      const path = i.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
      let step: string | null = null;
      if (path[0] === 'steps' && typeof path[1] === 'number' && Array.isArray(steps)) {
        const id = (steps[path[1]] as { id?: unknown } | undefined)?.id;
        step = typeof id === 'string' ? id : `#${path[1]}`;
      }
      return { step, path, message: i.message };
    });
    return { ok: false, issues };
  }
  const issues = semanticIssues(parsed.data, env);
  return issues.length ? { ok: false, issues } : { ok: true, definition: parsed.data };
}

/** The INVALID_DATA a client gets: the message names the first problem's step, details list them all. */
export function invalid(issues: Issue[], what = 'workflow definition'): DaemonError {
  const first = issues[0]!;
  const where = first.step ? `step "${first.step}": ` : '';
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  return new DaemonError('INVALID_DATA', `invalid ${what}: ${where}${first.message}${more}`, { issues });
}

/** checkDefinition, throwing INVALID_DATA. */
export function validateDefinition(raw: unknown, env: ValidationEnv = {}): Definition {
  const r = checkDefinition(raw, env);
  if (!r.ok) throw invalid(r.issues);
  return r.definition;
}

/**
 * A step's ancestors (steps reachable through needs), computed when first asked for and kept: only
 * steps whose templates read other steps ask, and a long chain's every step's set would be quadratic.
 */
export function ancestors(steps: StepDef[]): (id: string) => Set<string> {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const memo = new Map<string, Set<string>>();
  const visit = (id: string, stack: Set<string>): Set<string> => {
    const known = memo.get(id);
    if (known) return known;
    const out = new Set<string>();
    if (stack.has(id)) return out;
    stack.add(id);
    for (const n of byId.get(id)?.needs ?? []) {
      if (!byId.has(n)) continue;
      out.add(n);
      for (const a of visit(n, stack)) out.add(a);
    }
    stack.delete(id);
    memo.set(id, out);
    return out;
  };
  return (id) => visit(id, new Set());
}

const EVENT_NAME = /^[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)+$/;

/** A cycle in the needs graph as the ids along it (first repeated at the end), or null. */
export function findCycle(steps: StepDef[]): string[] | null {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const state = new Map<string, 1 | 2>();
  const path: string[] = [];
  const dfs = (id: string): string[] | null => {
    state.set(id, 1);
    path.push(id);
    for (const n of byId.get(id)?.needs ?? []) {
      if (!byId.has(n)) continue;
      if (state.get(n) === 1) return [...path.slice(path.indexOf(n)), n];
      if (!state.has(n)) {
        const c = dfs(n);
        if (c) return c;
      }
    }
    path.pop();
    state.set(id, 2);
    return null;
  };
  for (const s of steps) {
    if (!state.has(s.id)) {
      const c = dfs(s.id);
      if (c) return c;
    }
  }
  return null;
}

function semanticIssues(def: Definition, env: ValidationEnv): Issue[] {
  const issues: Issue[] = [];
  const add = (step: string | null, path: Array<string | number>, message: string): void =>
    void issues.push({ step, path, message });
  const ids = new Set<string>();
  def.steps.forEach((s, i) => {
    if (ids.has(s.id)) add(s.id, ['steps', i, 'id'], `step id "${s.id}" is used twice`);
    ids.add(s.id);
  });

  for (const [name, spec] of Object.entries(def.inputs)) {
    if (spec.default !== undefined) {
      const why = typeProblem(spec, spec.default);
      if (why) add(null, ['inputs', name, 'default'], `default of input "${name}" ${why}`);
    }
  }

  def.steps.forEach((s, i) => {
    const at = (...p: Array<string | number>): Array<string | number> => ['steps', i, ...p];
    const kinds = [s.event !== undefined, s.agent !== undefined, s.wait !== undefined].filter(Boolean).length;
    if (kinds !== 1)
      add(
        s.id,
        at(),
        kinds === 0 ? 'a step needs one of event, agent or wait' : 'a step has exactly one of event, agent or wait',
      );
    if (s.data !== undefined && s.event === undefined) add(s.id, at('data'), 'data belongs to an event step');
    if (s.output === 'json' && s.agent === undefined)
      add(s.id, at('output'), "output: json applies to agent steps (an event's answer is already data)");
    if (s.concurrency !== undefined && s.foreach === undefined)
      add(s.id, at('concurrency'), 'concurrency applies to a foreach step');
    if (s.wait && s.foreach !== undefined) add(s.id, at('foreach'), 'a wait step cannot have foreach');
    if (s.wait && s.retry) add(s.id, at('retry'), 'a wait step cannot retry');
    if (s.agent && s.agent.profile !== undefined && s.agent.agent_id !== undefined)
      add(s.id, at('agent'), 'give agent.profile or agent.agent_id, not both');
    if (
      s.agent?.agent_id !== undefined &&
      (s.agent.model ?? s.agent.system ?? s.agent.tools ?? s.agent.budget_usd) !== undefined
    ) {
      add(
        s.id,
        at('agent'),
        'model, system, tools and budget_usd apply to an agent the step spawns, not to an existing agent_id',
      );
    }
    if (s.event !== undefined) {
      if (!EVENT_NAME.test(s.event)) add(s.id, at('event'), `"${s.event}" is not an event name (namespace:action)`);
      else if (env.hasEvent && !env.hasEvent(s.event))
        add(s.id, at('event'), `unknown event "${s.event}" (no plugin answers it)`);
    }
    if (
      s.agent?.profile !== undefined &&
      !hasTemplate(s.agent.profile) &&
      env.hasProfile &&
      !env.hasProfile(s.agent.profile)
    ) {
      add(s.id, at('agent', 'profile'), `unknown agent profile "${s.agent.profile}"`);
    }
    const seen = new Set<string>();
    s.needs.forEach((n, j) => {
      if (n === s.id) add(s.id, at('needs', j), 'a step cannot need itself');
      else if (!ids.has(n)) add(s.id, at('needs', j), `needs unknown step "${n}"`);
      if (seen.has(n)) add(s.id, at('needs', j), `needs "${n}" twice`);
      seen.add(n);
    });
  });

  const cycle = findCycle(def.steps);
  if (cycle) add(cycle[0]!, ['steps'], `the needs form a cycle: ${cycle.join(' → ')}`);

  const anc = ancestors(def.steps);
  def.steps.forEach((s, i) => checkStepTemplates(def, s, i, { has: (id) => anc(s.id).has(id) }, add));

  if (def.outputs) {
    for (const [name, v] of Object.entries(def.outputs)) {
      templatesIn(v, ['outputs', name], null, add, (p) => rootProblem(p, def, { steps: ids, item: false, key: false }));
    }
  }
  return issues;
}

type Add = (step: string | null, path: Array<string | number>, message: string) => void;

interface Allowed {
  /** Step ids a template here may read. */
  steps: { has(id: string): boolean };
  item: boolean;
  key: boolean;
}

function checkStepTemplates(def: Definition, s: StepDef, i: number, anc: Allowed['steps'], add: Add): void {
  const at = (...p: Array<string | number>): Array<string | number> => ['steps', i, ...p];
  const body: Allowed = { steps: anc, item: s.foreach !== undefined, key: true };
  const head: Allowed = { steps: anc, item: false, key: false };
  const problem =
    (allowed: Allowed) =>
    (p: TemplatePath): string | null =>
      rootProblem(p, def, allowed);
  for (const single of ['foreach', 'when'] as const) {
    const v = s[single];
    if (v === undefined) continue;
    let parts;
    try {
      parts = parseTemplate(v);
    } catch (e) {
      add(s.id, at(single), (e as Error).message);
      continue;
    }
    if (parts.length !== 1 || typeof parts[0] === 'string') {
      add(s.id, at(single), `${single} must be exactly one template, such as "{{ steps.a.output.items }}"`);
      continue;
    }
    const why = problem(head)(parts[0]);
    if (why) add(s.id, at(single), why);
  }
  if (s.data !== undefined) templatesIn(s.data, at('data'), s.id, add, problem(body));
  if (s.agent) {
    for (const k of ['message', 'agent_id', 'profile', 'system', 'model'] as const) {
      if (s.agent[k] !== undefined) templatesIn(s.agent[k], at('agent', k), s.id, add, problem(body));
    }
  }
  if (s.wait) templatesIn(s.wait.prompt, at('wait', 'prompt'), s.id, add, problem(body));
}

function templatesIn(
  value: unknown,
  where: Array<string | number>,
  step: string | null,
  add: Add,
  problem: (p: TemplatePath) => string | null,
): void {
  let found;
  try {
    found = pathsIn(value, where);
  } catch (e) {
    if (!(e instanceof TemplateError)) throw e;
    add(step, where, e.message);
    return;
  }
  for (const { path, at } of found) {
    const why = problem(path);
    if (why) add(step, at, why);
  }
}

function rootProblem(p: TemplatePath, def: Definition, allowed: Allowed): string | null {
  if (!allowed.item && p.segments.includes(AT_INDEX))
    return `{{ ${p.text} }}: [index] is only defined in the body of a foreach step`;
  const first = p.segments[0];
  switch (p.root) {
    case 'inputs':
      if (typeof first !== 'string') return `{{ ${p.text} }} names no input (inputs.<name>)`;
      if (!Object.hasOwn(def.inputs, first))
        return `{{ ${p.text} }} reads input "${first}", which the workflow does not declare under inputs`;
      return null;
    case 'steps': {
      if (typeof first !== 'string') return `{{ ${p.text} }} names no step (steps.<id>.output)`;
      if (!def.steps.some((s) => s.id === first)) return `{{ ${p.text} }} reads unknown step "${first}"`;
      if (!allowed.steps.has(first))
        return `{{ ${p.text} }} reads step "${first}", which is not among this step's needs (directly or through them)`;
      const field = p.segments[1];
      if (field !== 'output' && field !== 'status' && field !== 'error')
        return `{{ ${p.text} }}: after steps.${first} comes output, status or error`;
      return null;
    }
    case 'item':
    case 'index':
      return allowed.item ? null : `{{ ${p.text} }} is only defined in the body of a foreach step`;
    case 'run':
      if (typeof first !== 'string' || !RUN_FIELDS.has(first) || p.segments.length > 1)
        return `{{ ${p.text} }}: run has id, workflow and key`;
      if (first === 'key' && !allowed.key) return `{{ ${p.text} }} is only defined in a step's body`;
      return null;
    default:
      return `{{ ${p.text} }}: unknown root "${p.root}" (use inputs, steps, item, index or run)`;
  }
}

/** Why `v` does not fit an input's type, or null. */
export function typeProblem(spec: InputSpec, v: unknown): string | null {
  switch (spec.type) {
    case 'string':
      return typeof v === 'string' ? null : 'must be a string';
    case 'number':
      return typeof v === 'number' && Number.isFinite(v) ? null : 'must be a number';
    case 'integer':
      return Number.isInteger(v) ? null : 'must be an integer';
    case 'boolean':
      return typeof v === 'boolean' ? null : 'must be true or false';
    case 'array':
      return Array.isArray(v) ? null : 'must be a list';
    case 'object':
      return v !== null && typeof v === 'object' && !Array.isArray(v) ? null : 'must be an object';
  }
}

/**
 * The run's inputs: given values checked against their types (strings from a command line are
 * converted where the type asks), defaults filled in, required ones present, unknown ones refused.
 */
export function resolveInputs(def: Definition, given: Record<string, unknown>): Record<string, unknown> {
  const issues: Issue[] = [];
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(given)) {
    if (!Object.hasOwn(def.inputs, name))
      issues.push({
        step: null,
        path: ['inputs', name],
        message: `workflow ${def.name} has no input "${name}" (it has: ${Object.keys(def.inputs).join(', ') || 'none'})`,
      });
  }
  for (const [name, spec] of Object.entries(def.inputs)) {
    let v = Object.hasOwn(given, name) ? given[name] : spec.default;
    if (v === undefined) {
      if (spec.required) issues.push({ step: null, path: ['inputs', name], message: `input "${name}" is required` });
      continue;
    }
    v = coerce(spec, v);
    const why = typeProblem(spec, v);
    if (why) issues.push({ step: null, path: ['inputs', name], message: `input "${name}" ${why}` });
    else out[name] = v;
  }
  if (issues.length) throw invalid(issues, 'inputs');
  return out;
}

function coerce(spec: InputSpec, v: unknown): unknown {
  if (typeof v !== 'string' || spec.type === 'string') return v;
  const t = v.trim();
  if ((spec.type === 'number' || spec.type === 'integer') && t !== '' && Number.isFinite(Number(t))) return Number(t);
  if (spec.type === 'boolean' && /^(true|false)$/i.test(t)) return t.toLowerCase() === 'true';
  if (spec.type === 'array' || spec.type === 'object') {
    try {
      return JSON.parse(t) as unknown;
    } catch {
      return v;
    }
  }
  return v;
}
