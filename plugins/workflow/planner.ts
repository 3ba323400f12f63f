/**
 * Planning: a planner agent turns a goal into a definition, and a failed run's state into the steps
 * that replace the rest of its DAG. Its answer is validated like any definition; one that fails is
 * sent back with the problems, a bounded number of times. Turn ids derive from the plan's key, so a
 * plan interrupted by a crash is asked of the same turns again and answered from their journal.
 */
import { DaemonError } from '../../client/errors.js';
import type { EventContext } from '../../client/protocol.js';
import type { Definition, StepDef } from './definition.js';
import type { ReplanRequest } from './deps.js';
import { agentIdFor, type Request } from './performer.js';
import { jsonInReply } from './task.js';
import type { Issue } from './validate.js';
import { issueLine } from './library.js';

export interface PlannerDeps {
  request: Request;
  /** The events and profiles the plan may use, as text for the planner. */
  catalog(): Promise<string>;
  /** Validate a definition against the daemon as it is. */
  check(raw: unknown): { ok: true; definition: Definition } | { ok: false; issues: Issue[] };
  profile: string;
  model?: string | undefined;
  attempts: number;
  timeoutMs: number;
}

const SHAPE = `A definition is one JSON object:
{"name": "lowercase-name", "description": "...", "inputs": {"<name>": {"type": "string|number|integer|boolean|array|object", "required": true, "default": ...}},
 "steps": [ ... ]}
A step: {"id": "a_name", "needs": ["ids of steps that must finish first"],
 and exactly one of: "event": "ns:action", "data": {...}  |  "agent": {"profile": "<profile>", "message": "..."}  |  "wait": {"prompt": "..."},
 optional: "output": "json" (agent steps: the output is the JSON value in the reply), "foreach": "{{ a list }}", "concurrency": n,
 "when": "{{ a value }}" (skipped when false/empty), "retry": {"max_attempts": n, "backoff_s": s}, "timeout_s": s,
 "on_failure": "fail" | "continue" | "replan"}.
Templates are path look-ups only, never expressions: {{ inputs.x }}, {{ steps.<id>.output.<path> }} (only for steps among its needs,
directly or through them), {{ item }} and {{ index }} inside a foreach step, {{ run.id }}.
An event step's output is the event's answer; an agent step's is {"reply", "turn_id", "cost_usd"}, or with output: json the JSON in its reply.`;

const clip = (v: unknown, n = 2000): string => {
  const s = JSON.stringify(v) ?? 'null';
  return s.length > n ? `${s.slice(0, n)}…` : s;
};

/**
 * One conversation with a planner agent: ask, validate, send the problems back, up to `attempts`
 * times. Returns what `accept` made of the first valid answer.
 */
async function converse<T>(
  d: PlannerDeps,
  key: string,
  context: EventContext,
  first: string,
  accept: (json: unknown) => { ok: true; value: T } | { ok: false; issues: Issue[] },
): Promise<{ value: T; attempts: number }> {
  const agentId = agentIdFor(key);
  const opts = { context, timeoutMs: d.timeoutMs };
  try {
    await d.request(
      'agent:spawn',
      {
        agent_id: agentId,
        profile: d.profile,
        ...(d.model ? { model: d.model } : {}),
        metadata: { workflow_plan: key },
      },
      { ...opts, timeoutMs: 30_000 },
    );
  } catch (e) {
    if (!(e instanceof DaemonError && e.code === 'CONFLICT')) throw e;
  }
  let message = first;
  let issues: Issue[] = [];
  try {
    for (let attempt = 1; attempt <= d.attempts; attempt++) {
      const r = await d.request<{ reply: string }>(
        'agent:send',
        { agent_id: agentId, message, turn_id: `${key}.p${attempt}`, wait: true },
        opts,
      );
      let json: unknown;
      try {
        json = jsonInReply(r.reply);
      } catch {
        issues = [{ step: null, path: [], message: 'the answer holds no JSON object' }];
        message = 'Your answer holds no JSON object. Answer with the JSON object only.';
        continue;
      }
      const got = accept(json);
      if (got.ok) return { value: got.value, attempts: attempt };
      issues = got.issues;
      message = `That definition is invalid:\n${got.issues
        .slice(0, 20)
        .map((i) => `- ${i.step ? `step "${i.step}"` : i.path.join('.') || 'definition'}: ${i.message}`)
        .join('\n')}\nAnswer with the corrected JSON object only.`;
    }
  } finally {
    void d
      .request('agent:terminate', { agent_id: agentId, reason: 'plan done' }, { context, timeoutMs: 10_000 })
      .catch(() => undefined);
  }
  throw new DaemonError(
    'INVALID_DATA',
    `the planner gave no valid definition in ${d.attempts} attempts; the last problem: ${issues.length ? issueLine(issues) : 'none'}`,
    { issues, attempts: d.attempts },
  );
}

/** A definition for a goal. */
export async function planDefinition(
  d: PlannerDeps,
  o: { goal: string; key: string; context: EventContext },
): Promise<{ definition: Definition; attempts: number }> {
  const first = `Goal: ${o.goal}\n\nWrite a workflow definition for agentd that achieves this goal.\n\n${SHAPE}\n\n${await d.catalog()}\n\nAnswer with the JSON object only.`;
  const r = await converse(d, o.key, o.context, first, (json) => {
    const c = d.check(json);
    return c.ok ? { ok: true, value: c.definition } : c;
  });
  return { definition: r.value, attempts: r.attempts };
}

/** The steps that replace the rest of a run whose step failed: kept steps unchanged, the others new. */
export async function replanDefinition(d: PlannerDeps, r: ReplanRequest): Promise<Definition> {
  const kept = r.definition.steps.filter((s) => r.kept.includes(s.id));
  const replaced = r.definition.steps.filter((s) => !r.kept.includes(s.id));
  const lines = [
    `Run ${r.run_id} of workflow "${r.workflow}"${r.definition.description ? ` (${r.definition.description})` : ''} has failed at step "${r.failed_step}": ${r.error.code} ${r.error.message}`,
    `Inputs: ${clip(r.inputs)}`,
    '',
    `Steps that finished and stay (templates may read their outputs; new steps may need them):`,
    ...kept.map(
      (s) => `- ${s.id} (${r.state[s.id]?.status}): ${clip(s, 400)} → output ${clip(r.state[s.id]?.output, 1500)}`,
    ),
    '',
    `Steps being replaced, as they were: ${clip(replaced, 4000)}`,
    '',
    `Write the steps that replace them, so the run reaches its goal despite the failure. Answer with one JSON object {"steps": [...]};`,
    `their ids must differ from the kept steps' (${kept.map((s) => s.id).join(', ') || 'none'}).`,
    '',
    SHAPE,
    '',
    await d.catalog(),
  ];
  const base = { ...r.definition };
  delete base.outputs; // the outputs named steps that may be gone: a replanned run reports its leaves
  const out = await converse(d, `${r.run_id}.replan.v${r.version}`, r.context, lines.join('\n'), (json) => {
    const steps = (json as { steps?: unknown })?.steps;
    if (!Array.isArray(steps))
      return { ok: false, issues: [{ step: null, path: ['steps'], message: 'give {"steps": [...]}' }] };
    const c = d.check({ ...base, steps: [...kept, ...(steps as StepDef[])] });
    return c.ok ? { ok: true, value: c.definition } : c;
  });
  return out.value;
}

/** The catalog text from system:discover and agent:profiles. */
export function catalogText(
  events: Array<{ event: string; summary: string; parameters?: Record<string, { required?: boolean }> }>,
  profiles: Array<{ name: string; description: string | null }>,
): string {
  const skip = /^(system|monitor|plugin|checkpoint|budget|workflow):/;
  const ev = events
    .filter((e) => !skip.test(e.event))
    .map((e) => {
      const params = Object.entries(e.parameters ?? {})
        .map(([n, p]) => `${n}${p.required ? '' : '?'}`)
        .join(', ');
      return `- ${e.event} {${params}}: ${e.summary}`;
    });
  const pr = profiles.map((p) => `- ${p.name}: ${p.description ?? ''}`);
  return `Events you may use:\n${ev.join('\n')}\n\nAgent profiles:\n${pr.join('\n') || '(none)'}`;
}
