/**
 * The model for the trace tests, answered by the local Messages API server: a planner that writes a
 * one-step plan per goal, and an agent that does the step with one tool call and then answers. Shared
 * by the tests, the bench and the script that makes the documentation's example.
 */
import type { MockReply, RecordedRequest } from '../fixtures/messages-api-server.js';

export const SOLVER_SYSTEM = 'You solve tasks with tools. Be brief.';

const text = (r: RecordedRequest): string => {
  const msgs = r.body.messages as Array<{ role: string; content: unknown }>;
  const first = msgs.find((m) => m.role === 'user');
  if (!first) return '';
  if (typeof first.content === 'string') return first.content;
  return (first.content as Array<{ type: string; text?: string }>).map((b) => b.text ?? '').join('');
};

const system = (r: RecordedRequest): string =>
  typeof r.body.system === 'string' ? r.body.system : JSON.stringify(r.body.system ?? '');

/** The tool results the model has seen in this turn, newest last. */
function toolResults(r: RecordedRequest): string[] {
  const out: string[] = [];
  for (const m of r.body.messages as Array<{ role: string; content: unknown }>) {
    if (!Array.isArray(m.content)) continue;
    for (const b of m.content as Array<{ type: string; content?: unknown }>)
      if (b.type === 'tool_result') out.push(typeof b.content === 'string' ? b.content : JSON.stringify(b.content));
  }
  return out;
}

export interface Task {
  /** The plan's step: tools and message. */
  tools: string[];
  message: string;
  /** The tool call the agent makes first. */
  call: { name: string; input: Record<string, unknown> };
  /** The tool call it makes when told a replayed call came back differently (fallback). */
  repair?: { name: string; input: Record<string, unknown> };
  answer: string;
}

/** What the planner plans and the agent does, by goal (any wording the test uses maps to a task). */
export type Tasks = (goal: string) => Task | undefined;

export function traceModel(tasks: Tasks) {
  return (r: RecordedRequest): MockReply => {
    const sys = system(r);
    const t = text(r);
    if (sys.includes('You plan work for agentd')) {
      const goal = /^Goal: (.*)$/m.exec(t)?.[1] ?? '';
      const task = tasks(goal);
      if (!task) return { text: '{"name": "nothing", "steps": []}' };
      const def = {
        name: 'goal',
        description: goal,
        steps: [
          {
            id: 'work',
            agent: { model: 'test-model', system: SOLVER_SYSTEM, tools: task.tools, message: task.message },
          },
        ],
      };
      return { text: '```json\n' + JSON.stringify(def) + '\n```' };
    }
    if (sys.includes('You solve tasks with tools')) {
      const task = tasks(t.split('\n')[0]!) ?? tasks(t);
      if (!task) return { text: 'I do not know this task.' };
      const seen = toolResults(r);
      const fallingBack = t.includes('[agentd] This task was done before');
      if (fallingBack && task.repair && seen.length === 0)
        return {
          content: [{ type: 'tool_use', name: task.repair.name, input: task.repair.input }],
          stop_reason: 'tool_use',
        };
      if (!fallingBack && seen.length === 0)
        return {
          content: [{ type: 'tool_use', name: task.call.name, input: task.call.input }],
          stop_reason: 'tool_use',
        };
      return { text: task.answer };
    }
    return { text: 'unexpected request' };
  };
}
