/**
 * What the issue is done by: spawn an agent from elsewhere and watch it work in the monitor. A real
 * daemon with the completion, agent, budget and kg plugins; only the Anthropic API is the mock
 * server (the network edge a test cannot reach).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventClient } from '../../client/index.js';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import { startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';
import { mountApp } from './mount.js';

let api: MessagesApiServer;
let daemon: DaemonHandle;
let client: EventClient;

beforeAll(async () => {
  api = await startMessagesApiServer();
  // A turn: the model records a finding with kg_add, then answers in text.
  api.setHandler((req) => {
    const messages = (req.body.messages ?? []) as Array<{ content: unknown }>;
    const afterTool = JSON.stringify(messages[messages.length - 1]?.content ?? '').includes('tool_result');
    if (!afterTool) {
      return {
        content: [
          {
            type: 'tool_use',
            name: 'kg_add',
            input: { nodes: [{ label: 'Finding', properties: { statement: 'water boils at 100 C' } }] },
          },
        ],
        stop_reason: 'tool_use',
        eventDelayMs: 30,
      };
    }
    return { text: 'Recorded: water boils at 100 °C at sea level.', eventDelayMs: 30, chunkChars: 5 };
  });
  daemon = await startDaemon({
    env: { ANTHROPIC_API_KEY: 'test-key', ANTHROPIC_BASE_URL: api.url },
    config: 'daemon:\n  disabled_plugins: [sandbox, bridge]\n',
    readyTimeoutMs: 60_000,
  });
  client = await EventClient.connect({ socketPath: daemon.socketPath });
});

afterAll(async () => {
  await client?.close();
  await daemon?.stop();
  await api?.close();
});

describe('watching an agent work', () => {
  it('shows the agent, its completions, its tool call and the graph it wrote, and opens the agent', async () => {
    const m = mountApp(client, { waitMs: 15_000 });
    const { until } = m;
    try {
      await until((f) => /nodes 0 · edges 0/.test(f) && f.includes('no agents'), 'an empty daemon');
      await client.request('budget:set', { scope: 'global', limit_usd: 5 });
      await client.request('agent:spawn', {
        agent_id: 'ada',
        model: 'claude-sonnet-4-5',
        tools: ['kg_add'],
        budget_usd: 1,
      });
      await client.request('agent:send', {
        agent_id: 'ada',
        message: 'At what temperature does water boil? Record it.',
        wait: false,
      });
      const f = await until(
        (x) =>
          /ada\s+idle t1 \$0\.\d+/.test(x) && /Finding 1/.test(x) && x.includes('agent:reply') && /(\d+) done/.test(x),
        'the finished turn',
      );
      expect(f).toMatch(/nodes 1 · edges 0/);
      expect(f).toMatch(/agent:ada\s+░*█*░*\s+\d+%/); // the agent's own budget gauge
      expect(f).toMatch(/ada t-…[0-9a-f]{6}\.s\d done/); // its completions, by agent
      // The tool call is in the log: filter to it.
      m.stdin.write('/agent:tool_call\r');
      await until(
        (x) => x.includes('[agent:tool_call]') && x.includes('agent:tool_call agent_id=ada name=kg_add'),
        'the tool call',
      );
      // Details of the agent: focus the agents panel (log → plugins → agents) and press enter.
      m.stdin.write('\t\t'); // two keys in one read, as tmux or a held key delivers them
      await until((x) => x.includes('▶ Agents'), 'agents focused');
      m.stdin.write('\r');
      await until(
        (x) => x.includes('▶ Agent ada') && x.includes('"agent_id": "ada"') && /1–\d+ of \d+/.test(x),
        'agent details',
      );
      // agent:info answers more than a screen: page down to its history.
      m.stdin.write('\x1b[6~');
      const d = await until(
        (x) => x.includes('"history_length"') && !x.includes('"agent_id": "ada"'),
        'the next page of agent:info',
      );
      expect(d).toMatch(/\d+–\d+ of \d+/);
      m.stdin.write('\x1b');
      await until((x) => x.includes('▶ Agents') && x.includes('q quit'), 'back to the panels');
      // And a request: the next panel, enter → completion:status of the selected (latest) request.
      m.stdin.write('\t\r');
      // Until completion:status answers, the view shows the stream's row ("loading…"): wait for the answer.
      const req = await until(
        (x) => /▶ Request t-\S+/.test(x) && x.includes('"request_id": "t-') && !x.includes('loading…'),
        'request details from completion:status',
      );
      expect(req).toMatch(/"status": "completed"/);
    } finally {
      m.unmount();
    }
  }, 120_000);
});
