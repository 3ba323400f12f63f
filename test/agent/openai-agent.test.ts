/**
 * An agent on an OpenAI-compatible model, from a profile that names it: its tools go out as
 * functions, the model's tool call (arguments split over stream chunks) runs Python in the real
 * sandbox, and the result goes back as a tool message. Locally without Docker it is skipped with the
 * reason; in CI (CI=true) a missing engine fails it.
 */
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IN_CI, startDaemon, tempHome, type DaemonHandle } from '../helpers/daemon-process.js';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import {
  startOpenAIChatServer,
  type ChatRecordedRequest,
  type OpenAIChatServer,
} from '../fixtures/openai-chat-server.js';
import { agentConfig, collect, KEY } from './helpers.js';
import type { EventFrame } from '../../client/protocol.js';

const IMAGE = process.env.AGENTD_SANDBOX_IMAGE ?? 'agentd-sandbox:latest';

async function dockerMissing(): Promise<string | null> {
  const docker = new Docker();
  try {
    await Promise.race([docker.ping(), new Promise((_, r) => setTimeout(() => r(new Error('ping timed out')), 3000))]);
    await docker.getImage(IMAGE).inspect();
    return null;
  } catch (e) {
    return `no Docker engine or no image ${IMAGE} (${(e as Error).message}); see scripts/dockerd.sh and scripts/sandbox-image.sh`;
  }
}

const missing = await dockerMissing();
if (missing && !IN_CI) console.warn(`[skip] OpenAI-compatible agent sandbox test: ${missing}`);

type ChatMessage = { role: string; content?: unknown; tool_call_id?: string; tool_calls?: unknown[] };
const messagesOf = (r: ChatRecordedRequest): ChatMessage[] => r.body.messages as ChatMessage[];

describe.skipIf(missing !== null && !IN_CI)('an agent on an OpenAI-compatible model', () => {
  let anthropic: MessagesApiServer;
  let chat: OpenAIChatServer;
  let d: DaemonHandle;
  let events: EventFrame[];

  beforeAll(async () => {
    if (missing) throw new Error(`CI=true and ${missing}`);
    anthropic = await startMessagesApiServer();
    chat = await startOpenAIChatServer({ apiKey: 'local-key' });
    const profiles = path.join(tempHome('agentd-oa-profiles-'), 'profiles');
    fs.mkdirSync(profiles, { recursive: true });
    fs.writeFileSync(
      path.join(profiles, 'local-coder.yaml'),
      [
        'description: A coder on a local model.',
        'model: local/qwen-coder',
        'system: You write Python and run it with sandbox_exec before answering.',
        'tools: [sandbox_exec]',
        'limits: {max_turns: 4, max_tool_calls: 4, max_tokens: 512}',
        'budget_usd: 0.5',
      ].join('\n'),
    );
    d = await startDaemon({
      env: { ANTHROPIC_BASE_URL: anthropic.url, ANTHROPIC_API_KEY: KEY, LOCAL_LLM_KEY: 'local-key' },
      config: agentConfig(
        {
          sandbox: { image: IMAGE, pool_size: 0 },
          agent: { watch_profiles: false, extra_profile_dirs: [profiles] },
          completion: {
            default_model: 'test-model',
            max_retries: 0,
            max_concurrency: 16,
            providers: { local: { kind: 'openai', base_url: chat.url, api_key_env: 'LOCAL_LLM_KEY' } },
          },
        },
        { sandbox: true },
      ),
      readyTimeoutMs: 45_000,
    });
    events = await collect(d.client, ['agent:*', 'sandbox:exec_finished', 'completion:result']);
  }, 60_000);

  afterAll(async () => {
    await d?.stop();
    await Promise.all([anthropic?.close(), chat?.close()]);
  });

  it('runs a sandbox_exec tool call end to end and answers from its output', async () => {
    const c = d.client;
    chat.setHandler((req) => {
      const msgs = messagesOf(req);
      const last = msgs[msgs.length - 1]!;
      if (last.role !== 'tool') {
        return {
          text: 'I will count them.',
          // Split into 6-character fragments: the provider assembles the arguments.
          chunkChars: 6,
          tool_calls: [
            {
              id: 'call_py1',
              name: 'sandbox_exec',
              arguments: {
                language: 'python',
                code: 'print(len([p for p in range(2, 100) if all(p % q for q in range(2, p))]))',
              },
            },
          ],
        };
      }
      const out = JSON.parse(String(last.content)) as { stdout: string };
      return { text: `There are ${out.stdout.trim()} primes below 100.` };
    });
    await c.request('agent:spawn', { agent_id: 'oa-coder', profile: 'local-coder' });
    const r = await c.request(
      'agent:send',
      { agent_id: 'oa-coder', message: 'How many primes are there below 100? Compute it.' },
      { timeoutMs: 120_000 },
    );
    expect(r).toMatchObject({
      status: 'completed',
      steps: 2,
      reply: 'There are 25 primes below 100.',
      stop_reason: 'end_turn',
    });
    expect(r.tool_calls as Array<{ name: string; is_error: boolean; input: unknown }>).toEqual([
      expect.objectContaining({
        name: 'sandbox_exec',
        is_error: false,
        input: { language: 'python', code: expect.stringContaining('range(2, 100)') },
      }),
    ]);
    // Nothing went to Anthropic: the profile's model is the local one.
    expect(anthropic.messageRequests()).toHaveLength(0);
    const [first, second] = chat.chatRequests();
    expect(first!.body).toMatchObject({ model: 'qwen-coder', stream: true, max_tokens: 512 });
    expect(messagesOf(first!)[0]).toEqual({
      role: 'system',
      content: 'You write Python and run it with sandbox_exec before answering.',
    });
    expect(first!.body.tools).toEqual([
      expect.objectContaining({
        type: 'function',
        function: expect.objectContaining({
          name: 'sandbox_exec',
          parameters: expect.objectContaining({ type: 'object' }),
        }),
      }),
    ]);
    // The tool result went back as a tool message answering the call, after the assistant's call.
    const msgs = messagesOf(second!);
    expect(msgs.slice(-2).map((m) => m.role)).toEqual(['assistant', 'tool']);
    expect(msgs[msgs.length - 2]!.tool_calls).toEqual([
      {
        id: 'call_py1',
        type: 'function',
        function: { name: 'sandbox_exec', arguments: expect.stringContaining('"language":"python"') },
      },
    ]);
    const toolMsg = msgs[msgs.length - 1]!;
    expect(toolMsg.tool_call_id).toBe('call_py1');
    expect(JSON.parse(String(toolMsg.content))).toMatchObject({ exit_code: 0, stdout: '25\n' });
    // The Python really ran in a container, for this agent.
    expect(events.some((e) => e.event === 'sandbox:exec_finished' && e.context?.agent_id === 'oa-coder')).toBe(true);
    const results = events.filter((e) => e.event === 'completion:result' && e.data.agent_id === 'oa-coder');
    expect(results.map((e) => [e.data.model, e.data.provider, e.data.price_known])).toEqual([
      ['local/qwen-coder', 'local', false],
      ['local/qwen-coder', 'local', false],
    ]);
    // The agent's history keeps the one format: the call as a tool_use block, the result as a tool_result.
    const info = (await c.request<Record<string, unknown>>('agent:info', {
      agent_id: 'oa-coder',
      history_limit: 10,
    })) as { history: Array<{ role: string; content: unknown }> };
    expect(JSON.stringify(info.history)).toContain('"type":"tool_use"');
    expect(JSON.stringify(info.history)).toContain('"type":"tool_result"');
  }, 150_000);
});
