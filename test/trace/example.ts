/**
 * Makes the example of docs/traces.md: a daemon against the local Messages API server (the trace
 * tests' model), a goal learned, the same goal followed, a paraphrase followed, workflow:plan answered
 * from the trace, an agent turn given a goal learned and followed by another agent, then trace:list
 * and `daemon-control runs`. Run: `npx tsx test/trace/example.ts`.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { startMessagesApiServer } from '../fixtures/messages-api-server.js';
import { ROOT, startDaemon } from '../helpers/daemon-process.js';
import { KEY, workflowConfig } from '../workflow/helpers.js';
import { SOLVER_SYSTEM, traceModel, type Task } from './model.js';

const TASK: Task = {
  tools: ['kg_add'],
  message: 'Count the prime numbers below 100 and record the count in the graph as node primes-100.',
  call: {
    name: 'kg_add',
    input: {
      nodes: [
        { id: 'primes-100', label: 'Finding', properties: { statement: 'there are 25 primes below 100', count: 25 } },
      ],
    },
  },
  answer: 'There are 25 prime numbers below 100; recorded as node primes-100.',
};

const api = await startMessagesApiServer();
api.setHandler(traceModel(() => TASK));
const d = await startDaemon({
  env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
  config: workflowConfig(),
  readyTimeoutMs: 60_000,
});
const show = (title: string, v: unknown): void =>
  void process.stdout.write(`### ${title}\n${JSON.stringify(v, null, 2)}\n`);
try {
  for (const goal of [
    'Count the prime numbers below 100',
    'count the prime numbers below 100.',
    'How many primes are there under 100?',
  ]) {
    const before = api.messageRequests().length;
    const r = await d.client.request<Record<string, unknown>>('workflow:run_goal', { goal }, { timeoutMs: 120_000 });
    show(`workflow:run_goal ${JSON.stringify(goal)} (Messages API calls: ${api.messageRequests().length - before})`, r);
  }
  let before = api.messageRequests().length;
  const plan = await d.client.request<Record<string, unknown>>(
    'workflow:plan',
    { goal: 'How many prime numbers are below 100?' },
    { timeoutMs: 120_000 },
  );
  show(`workflow:plan (Messages API calls: ${api.messageRequests().length - before})`, plan);
  for (const [agent, message, goal] of [
    ['learner', TASK.message, 'Count the primes below 100 and record the count in the graph'],
    [
      'follower',
      'How many primes are there below 100? Put the count in the graph.',
      'count the primes below 100, and record the count in the graph',
    ],
  ] as const) {
    await d.client.request('agent:spawn', {
      agent_id: agent,
      model: 'test-model',
      system: SOLVER_SYSTEM,
      tools: ['kg_add'],
    });
    before = api.messageRequests().length;
    const r = await d.client.request<Record<string, unknown>>(
      'agent:send',
      { agent_id: agent, message, goal },
      { timeoutMs: 120_000 },
    );
    show(`agent:send to ${agent} (Messages API calls: ${api.messageRequests().length - before})`, r);
    show(
      `trace:run ${String(r.turn_id)}`,
      await d.client.request('trace:run', { run_id: String(r.turn_id), wait: true }),
    );
  }
  show('trace:list', await d.client.request('trace:list', {}));
  const list = await d.client.request<{ traces: Array<{ trace_id: string }> }>('trace:list', {});
  show('trace:get', await d.client.request('trace:get', { trace_id: list.traces[0]!.trace_id }));
  const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'daemon-control.ts'), 'runs'], {
    env: { ...process.env, AGENTD_HOME: d.home, AGENTD_SOCKET: d.socketPath },
    encoding: 'utf8',
  });
  process.stdout.write(`### daemon-control runs\n${out}`);
} finally {
  await d.stop();
  await api.close();
}
