/**
 * Agent overhead, against the local Messages API (and the real sandbox when Docker is there):
 *  - turn: one agent:send whose model calls sandbox_exec once (model call, tool call, model call),
 *    beside the same three calls made directly over the socket one after another (completion:request,
 *    sandbox:exec, completion:request), rounds interleaved so both see the same machine noise. The
 *    difference is what the agent layer costs: journaling each step, events, history.
 *  - fleet: 100 agents spawned at once, then 100 agent:send at once (one model call each), beside
 *    100 direct completion:request at once.
 * The turn is measured with sandbox_exec (python, warm pool; skipped with the reason when Docker is
 * missing) and with kg_query (embedded graph), whose small cost shows the agent layer's own. Run alone: `npx tsx bench/agent.ts [--quick]`.
 */
import { performance } from 'node:perf_hooks';
import Docker from 'dockerode';
import YAML from 'yaml';
import { startDaemon } from '../test/helpers/daemon-process.js';
import { startMessagesApiServer, type RecordedRequest } from '../test/fixtures/messages-api-server.js';
import { round, summarize } from './stats.js';

const IMAGE = process.env.AGENTD_SANDBOX_IMAGE ?? 'agentd-sandbox:latest';

async function dockerMissing(): Promise<string | null> {
  try {
    const docker = new Docker();
    await Promise.race([docker.ping(), new Promise((_, r) => setTimeout(() => r(new Error('ping timed out')), 3000))]);
    await docker.getImage(IMAGE).inspect();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

const p50 = (xs: number[]): number => summarize(xs).p50_us / 1000;

export async function benchAgent(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const rounds = opts.quick ? 5 : 30;
  const fleet = 100;
  const noDocker = await dockerMissing();
  const inputs: Record<string, Record<string, unknown>> = {
    kg_query: { label: 'Nothing' },
    sandbox_exec: { language: 'python', code: 'print(6 * 7)' },
  };
  const api = await startMessagesApiServer();
  const config = YAML.stringify({
    daemon: { log_level: 'warn', disabled_plugins: noDocker ? ['sandbox'] : [] },
    budget: { prices: { 'bench-model': { input: 1, output: 2 } } },
    completion: { default_model: 'bench-model', max_retries: 0, max_concurrency: 50 },
    agent: { watch_profiles: false, max_agents: 100_000 },
    sandbox: { image: IMAGE, pool_size: 2 },
  });
  const d = await startDaemon({
    env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: 'bench' },
    config,
    readyTimeoutMs: 60_000,
  });
  const c = d.client;
  api.setHandler((req: RecordedRequest) => {
    const msgs = req.body.messages as Array<{ role: string; content: unknown }>;
    const last = msgs[msgs.length - 1]!;
    const gotResult =
      Array.isArray(last.content) && (last.content as Array<{ type: string }>).some((b) => b.type === 'tool_result');
    const tool = (req.body.tools as Array<{ name: string }> | undefined)?.[0]?.name;
    if (tool && !gotResult) return { content: [{ type: 'tool_use', name: tool, input: inputs[tool]! }] };
    return { text: 'the answer is 42' };
  });
  let agents = 0;
  /** One turn with one call of `tool` vs the same three calls made directly; rounds alternate which goes first. */
  const pair = async (tool: string): Promise<Record<string, unknown>> => {
    const toolInput = inputs[tool]!;
    const tools = [{ name: tool, description: 'bench', input_schema: { type: 'object' } }];
    const direct = async (): Promise<number> => {
      const t0 = performance.now();
      const first = await c.request<{ content: Array<Record<string, unknown>> }>(
        'completion:request',
        {
          messages: [{ role: 'user', content: 'go' }],
          max_tokens: 256,
          tools,
        },
        { timeoutMs: 60_000 },
      );
      const use = first.content.find((b) => b.type === 'tool_use')!;
      const out =
        tool === 'kg_query'
          ? await c.request('kg:find', { ...toolInput, limit: 50 })
          : await c.request<Record<string, unknown>>('sandbox:exec', toolInput, { timeoutMs: 60_000 });
      await c.request<Record<string, unknown>>(
        'completion:request',
        {
          messages: [
            { role: 'user', content: 'go' },
            { role: 'assistant', content: first.content },
            { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: JSON.stringify(out) }] },
          ],
          max_tokens: 256,
          tools,
        },
        { timeoutMs: 60_000 },
      );
      return performance.now() - t0;
    };
    const turn = async (): Promise<number> => {
      // A fresh agent each round, so its history (and the request size) matches the direct calls.
      const id = `bench-turn-${++agents}`;
      await c.request<Record<string, unknown>>('agent:spawn', {
        agent_id: id,
        tools: [tool],
        limits: { max_tokens: 256 },
      });
      const t0 = performance.now();
      const r = await c.request('agent:send', { agent_id: id, message: 'go' }, { timeoutMs: 60_000 });
      if ((r.tool_calls as unknown[]).length !== 1)
        throw new Error(`expected one tool call, got ${JSON.stringify(r.tool_calls)}`);
      return performance.now() - t0;
    };
    await direct();
    await turn();
    const turnMs: number[] = [];
    const directMs: number[] = [];
    for (let i = 0; i < rounds; i++) {
      if (i % 2 === 0) {
        directMs.push(await direct());
        turnMs.push(await turn());
      } else {
        turnMs.push(await turn());
        directMs.push(await direct());
      }
    }
    const turnP50 = p50(turnMs);
    const directP50 = p50(directMs);
    return {
      rounds,
      agent_turn_p50_ms: round(turnP50, 2),
      direct_sum_p50_ms: round(directP50, 2),
      overhead_ms: round(turnP50 - directP50, 2),
      ratio: round(turnP50 / directP50, 3),
    };
  };
  try {
    const withSandbox = noDocker ? { skipped: `no Docker: ${noDocker}` } : await pair('sandbox_exec');
    const withKg = await pair('kg_query');

    // ---- 100 agents spawned and messaged concurrently ---------------------------------------------
    let t0 = performance.now();
    await Promise.all(
      Array.from({ length: fleet }, (_, i) =>
        c.request('agent:spawn', { agent_id: `bench-fleet-${i}`, limits: { max_tokens: 64 } }),
      ),
    );
    const spawnMs = performance.now() - t0;
    // Direct completions before and after the agents' sends; the baseline is their mean (drift cancels).
    const directFleet = async (tag: string): Promise<number> => {
      const s0 = performance.now();
      await Promise.all(
        Array.from({ length: fleet }, (_, i) =>
          c.request('completion:request', { prompt: `${tag} ${i}`, max_tokens: 64 }, { timeoutMs: 120_000 }),
        ),
      );
      return performance.now() - s0;
    };
    const directBefore = await directFleet('before');
    const sendLat: number[] = [];
    t0 = performance.now();
    await Promise.all(
      Array.from({ length: fleet }, async (_, i) => {
        const s = performance.now();
        const r = await c.request(
          'agent:send',
          { agent_id: `bench-fleet-${i}`, message: `hello ${i}` },
          { timeoutMs: 120_000 },
        );
        if (r.reply !== 'the answer is 42') throw new Error(`unexpected reply ${String(r.reply)}`);
        sendLat.push(performance.now() - s);
      }),
    );
    const sendMs = performance.now() - t0;
    const directFleetMs = (directBefore + (await directFleet('after'))) / 2;
    const sl = summarize(sendLat);

    return {
      turn_one_sandbox_exec: withSandbox,
      turn_one_kg_query: withKg,
      fleet_100: {
        spawn_all_ms: round(spawnMs, 1),
        spawns_per_s: round(fleet / (spawnMs / 1000), 0),
        send_all_ms: round(sendMs, 1),
        send_p50_ms: round(sl.p50_us / 1000, 1),
        send_p99_ms: round(sl.p99_us / 1000, 1),
        direct_completions_all_ms: round(directFleetMs, 1),
        ratio: round(sendMs / directFleetMs, 3),
      },
    };
  } finally {
    await d.stop();
    await api.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchAgent({ quick: process.argv.includes('--quick') });
  process.stdout.write(JSON.stringify(r, null, 2) + '\n');
}
