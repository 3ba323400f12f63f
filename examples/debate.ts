/**
 * Two agents debate a topic for two rounds; print the transcript and what it cost.
 * (interfaces/debate.ts does the same live, token by token.)
 *
 *   ./daemon-control.ts restart            # with ANTHROPIC_API_KEY in the environment
 *   npx tsx examples/debate.ts "Is a hot dog a sandwich?"
 */
import { EventClient } from 'agentd/client';

const topic = process.argv[2] ?? 'Should research code be published with every paper?';
const client = await EventClient.connect();

// agent:converse spawns one agent per profile, lets them speak in turn, and terminates them at the end.
const r = await client.request<{
  transcript: Array<{ round: number; agent_id: string; text: string }>;
  agents: string[];
}>('agent:converse', { profiles: ['researcher', 'critic'], opening: topic, rounds: 2 }, { timeoutMs: 600_000 });
console.log(`Debate: ${topic}\n`);
for (const u of r.transcript) console.log(`[round ${u.round}] ${u.agent_id}: ${u.text.trim()}\n`);

let cost = 0;
for (const agent_id of r.agents) {
  const info = await client.request<{ usage: { cost_usd: number } }>('agent:info', { agent_id, history_limit: 0 });
  cost += info.usage.cost_usd;
}
console.log(`${r.transcript.length} utterances, $${cost.toFixed(6)}`);
await client.close();
