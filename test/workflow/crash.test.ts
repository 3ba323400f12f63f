/**
 * The workflow crash suite: a 30-step run (agent steps calling the local Messages API, side effects
 * with idempotency keys, graph writes, a foreach) whose daemon is killed with SIGKILL at random
 * moments and restarted, over several seeds. Each run must end succeeded with the same outputs as an
 * uncrashed run of the same definition; every side effect happens once; a step whose result was
 * journaled is never called again, and one called twice was in flight at a kill (same key both
 * times); each agent step's Messages API call is made once, or again only across a kill, and is
 * charged once.
 *
 * AGENTD_WF_CRASH_SEEDS ("1,2,3", "1-8") picks the seeds (default 1,2,3); AGENTD_WF_CRASH_KILLS the
 * kills per seed (default 3).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import { ROOT, startDaemon, tempHome, type DaemonHandle } from '../helpers/daemon-process.js';
import { parseSeeds, rng } from '../durability/model.js';
import { firstUserText, KEY } from './helpers.js';

const SEEDS = parseSeeds(process.env.AGENTD_WF_CRASH_SEEDS ?? '1,2,3');
const KILLS = Number(process.env.AGENTD_WF_CRASH_KILLS ?? 3);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const config = YAML.stringify({
  daemon: {
    plugin_dirs: [path.join(ROOT, 'test', 'workflow', 'fixture-plugins')],
    disabled_plugins: ['sandbox', 'bridge'],
  },
  budget: { prices: { 'test-model': { input: 1, output: 2 } } },
  completion: { default_model: 'test-model', max_retries: 0, max_concurrency: 8 },
  agent: { watch_profiles: false, default_model: 'test-model' },
  workflow: { watch: false },
  checkpoint: { interval_ms: 0 },
});

/** 30 steps: a root effect, six agents, six effects on their replies, graph writes, a foreach, six more agents, six effects, a join. */
function definition(): Record<string, unknown> {
  const steps: Array<Record<string, unknown>> = [];
  const effect = (id: string, needs: string[], value: unknown, delay = 40): Record<string, unknown> => ({
    id,
    needs,
    event: 'probe:effect',
    data: { key: '{{ run.key }}', value, delay_ms: delay },
  });
  const agent = (id: string, needs: string[], message: string) => ({
    id,
    needs,
    agent: { model: 'test-model', system: 'crash probe', message },
  });
  steps.push(effect('root', [], 'root'));
  for (let i = 1; i <= 6; i++)
    steps.push(agent(`a${i}`, ['root'], `[a${i}] first wave, root said {{ steps.root.output.value }}`));
  for (let i = 1; i <= 6; i++) steps.push(effect(`e${i}`, [`a${i}`], `{{ steps.a${i}.output.reply }}`, 20 * i));
  steps.push({
    id: 'g1',
    needs: ['e1', 'e2', 'e3'],
    event: 'kg:add_nodes',
    data: { nodes: [{ id: '{{ run.id }}-g1', label: 'Concept', properties: { from: '{{ steps.e1.output.value }}' } }] },
  });
  steps.push({
    id: 'g2',
    needs: ['e4', 'e5', 'e6'],
    event: 'kg:add_nodes',
    data: { nodes: [{ id: '{{ run.id }}-g2', label: 'Concept', properties: { from: '{{ steps.e4.output.value }}' } }] },
  });
  steps.push({
    id: 'fan',
    needs: ['g1', 'g2'],
    event: 'probe:effect',
    foreach: '{{ inputs.items }}',
    concurrency: 3,
    data: { key: '{{ run.key }}', value: 'item {{ item }}', delay_ms: 30 },
  });
  for (let i = 1; i <= 6; i++)
    steps.push(agent(`b${i}`, ['fan'], `[b${i}] second wave, fan gave {{ steps.fan.output[${i}].value }}`));
  for (let i = 1; i <= 6; i++) steps.push(effect(`f${i}`, [`b${i}`], `{{ steps.b${i}.output.reply }}`, 15 * i));
  steps.push({
    id: 'g3',
    needs: ['f1', 'f2', 'f3', 'f4', 'f5', 'f6'],
    event: 'kg:add_edges',
    data: { edges: [{ from: '{{ run.id }}-g1', to: '{{ run.id }}-g2', type: 'RELATES_TO' }] },
  });
  steps.push(
    effect('join', ['g3'], ['{{ steps.f1.output.value }}', '{{ steps.f6.output.value }}', '{{ steps.fan.output }}']),
  );
  return {
    name: 'crash-probe',
    inputs: { items: { type: 'array', default: Array.from({ length: 8 }, (_, i) => i) } },
    steps,
  };
}

let api: MessagesApiServer;
beforeAll(async () => {
  api = await startMessagesApiServer({ autoCloseMs: 30 * 60_000, maxRecorded: 100_000 });
  // Each call answers after a delay from its prompt, so calls are in flight at the kills.
  api.setHandler((r) => {
    const t = firstUserText(r);
    let h = 0;
    for (const ch of t) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    return { text: `reply to ${/^\[(\w+)\]/.exec(t)?.[1]}`, delayMs: 40 + (h % 300) };
  });
});
afterAll(async () => {
  await api?.close();
});

interface Call {
  key: string;
  at: number;
}

const normalise = (v: unknown, runId: string): unknown => JSON.parse(JSON.stringify(v).split(runId).join('<run>'));

describe('workflow runs across kill -9', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: ${KILLS} kills; the run succeeds with the uncrashed outputs, each effect once, each model call once or again only across a kill`, async () => {
      const r = rng(seed);
      const home = tempHome(`agentd-wf-crash-${seed}-`);
      const boot = (): Promise<DaemonHandle> =>
        startDaemon({
          home,
          config,
          env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
          readyTimeoutMs: 90_000,
        });
      const runId = `crash${seed}`;
      const apiStart = api.requests.length;
      let d = await boot();
      await d.client.request('workflow:start', { definition: definition(), run_id: runId });
      const kills: number[] = [];
      for (let k = 0; k < KILLS; k++) {
        await sleep(r.int(150, 1200));
        const st = await d.client.request<{ status: string }>('workflow:status', { run_id: runId });
        if (st.status !== 'running') break;
        await d.kill('SIGKILL');
        kills.push(Date.now()); // after the process is gone: every call it recorded came before

        d = await boot();
      }
      const fin = await d.client.request<{
        status: string;
        outputs: unknown;
        steps: Record<string, { attempts: number; status: string }>;
      }>('workflow:start', { run_id: runId, definition: definition(), wait: true }, { timeoutMs: 180_000 });
      expect(fin.status).toBe('succeeded');
      expect(Object.keys(fin.steps)).toHaveLength(30);
      expect(Object.values(fin.steps).every((s) => s.status === 'succeeded' && s.attempts === 1)).toBe(true);

      // The same definition without a crash, in the same daemon: the same outputs.
      const refId = `ref${seed}`;
      const ref = await d.client.request<{ status: string; outputs: unknown }>(
        'workflow:start',
        { run_id: refId, definition: definition(), wait: true },
        { timeoutMs: 180_000 },
      );
      expect(ref.status).toBe('succeeded');
      expect(normalise(fin.outputs, runId)).toEqual(normalise(ref.outputs, refId));

      // Side effects: each key applied once; a key called more than once was in flight at a kill.
      const probe = await d.client.request<{ calls: Call[]; effects: Call[] }>('probe:calls', {});
      const mine = probe.calls.filter((c) => c.key.startsWith(`${runId}.`));
      const byKey = new Map<string, number[]>();
      for (const c of mine) byKey.set(c.key, [...(byKey.get(c.key) ?? []), c.at]);
      expect(byKey.size).toBe(1 + 6 + 8 + 6 + 1);
      expect(probe.effects.filter((e) => e.key.startsWith(`${runId}.`))).toHaveLength(byKey.size);
      for (const [key, ats] of byKey) {
        expect(key).toMatch(/\.a1$/); // never a second attempt: a repeat reuses the attempt's key
        for (let i = 1; i < ats.length; i++) {
          expect(
            kills.some((k) => k > ats[i - 1]! && k <= ats[i]!),
            `${key} called again without a kill between`,
          ).toBe(true);
        }
      }

      // Model calls: per agent step once, or again only across a kill; one charge each.
      const calls = api.requests.slice(apiStart).filter((q) => q.path === '/v1/messages');
      const byStep = new Map<string, number[]>();
      for (const q of calls) {
        const tag = /^\[(\w+)\]/.exec(firstUserText(q))?.[1];
        if (tag) byStep.set(tag, [...(byStep.get(tag) ?? []), q.at]);
      }
      // The reference run made one call per agent step (12); the crashed run the rest.
      const crashed = new Map([...byStep].map(([t, ats]) => [t, ats.slice(0, ats.length - 1)]));
      for (const [tag, ats] of crashed) {
        expect(ats.length, `${tag}`).toBeGreaterThanOrEqual(1);
        for (let i = 1; i < ats.length; i++)
          expect(
            kills.some((k) => k > ats[i - 1]! && k <= ats[i]!),
            `${tag} called again without a kill between`,
          ).toBe(true);
      }
      const ledger = await d.client.request<{
        entries: Array<{ request_id: string; kind: string; estimated: boolean }>;
      }>('budget:ledger', { workflow_id: runId, limit: 1000 });
      const commits = new Map<string, number>();
      const estimates = new Map<string, number>();
      for (const e of ledger.entries) {
        const step = e.request_id.split('.')[1]!;
        if (e.kind === 'commit' && !e.estimated) commits.set(step, (commits.get(step) ?? 0) + 1);
        if (e.estimated) estimates.set(step, (estimates.get(step) ?? 0) + 1);
      }
      // One real charge per agent step, whatever the kills.
      expect([...commits.keys()].sort()).toEqual([
        'a1',
        'a2',
        'a3',
        'a4',
        'a5',
        'a6',
        'b1',
        'b2',
        'b3',
        'b4',
        'b5',
        'b6',
      ]);
      expect(
        [...commits.values()].every((n) => n === 1),
        JSON.stringify([...commits]),
      ).toBe(true);
      // No estimated charge for a call repeated once; the completion plugin retries an interrupted call
      // once (restart_policy retry_once), so a call caught by a second kill is failed, its reservation
      // charged as a worst-case estimate, and the resumed turn asks again.
      for (const [step, n] of estimates)
        expect(n, `${step}: ${crashed.get(step)?.length} calls`).toBeLessThanOrEqual(
          Math.max(0, (crashed.get(step)?.length ?? 1) - 2),
        );
      const settled = ledger.entries.filter((e) => e.kind === 'commit' || e.kind === 'charge');
      // Every model call of a step had the step's key (its turn's request ids derive from it).
      expect(settled.every((e) => /^crash\d+\.[ab]\d\.a1\.s0$/.test(e.request_id))).toBe(true);
      await d.stop();
    }, 600_000);
  }
});
