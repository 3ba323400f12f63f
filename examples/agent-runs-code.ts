/**
 * Spawn an agent that may run code in the sandbox, give it a task, and print what it ran and said.
 * The code runs in a hardened container (no network); without Docker the tool answers UNAVAILABLE
 * and the agent says so.
 *
 *   ./daemon-control.ts restart            # with ANTHROPIC_API_KEY in the environment
 *   npx tsx examples/agent-runs-code.ts
 */
import { EventClient } from 'agentd/client';

interface Turn {
  reply: string;
  tool_calls: Array<{ name: string; input: { code?: string }; is_error: boolean }>;
  cost_usd: number;
}

const client = await EventClient.connect();
const agent_id = `coder-${process.pid}`;
await client.request('agent:spawn', { agent_id, profile: 'coder', budget_usd: 0.5 });
try {
  const turn = await client.request<Turn>(
    'agent:send',
    {
      agent_id,
      message:
        'Run this and tell me what it prints:\n```python\nprint(sum(p for p in range(2, 100) if all(p % q for q in range(2, p))))\n```',
    },
    { timeoutMs: 300_000 },
  );
  for (const call of turn.tool_calls)
    console.log(
      `ran ${call.name}${call.is_error ? ' (failed)' : ''}:\n${call.input.code ?? JSON.stringify(call.input)}`,
    );
  console.log(`\n${agent_id}: ${turn.reply}\n— $${turn.cost_usd}`);
} finally {
  // An agent lives until it is terminated; deleting it also removes its history.
  await client.request('agent:terminate', { agent_id });
  await client.request('agent:delete', { agent_id });
  await client.close();
}
