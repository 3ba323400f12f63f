/**
 * Ask a model one question and print the answer with what it cost.
 *
 *   ./daemon-control.ts restart            # with ANTHROPIC_API_KEY in the environment
 *   npx tsx examples/ask-a-completion.ts "Why is the sky blue?"
 */
import { EventClient } from 'agentd/client';

const question = process.argv[2] ?? 'In one sentence: what is a microkernel?';
const client = await EventClient.connect();

// completion:request waits for the result; completion:async would answer at once with a request_id.
const r = await client.request<{
  text: string;
  model: string;
  usage: { input_tokens: number; output_tokens: number };
  cost_usd: number;
}>('completion:request', { prompt: question, model: 'haiku', max_tokens: 300 }, { timeoutMs: 120_000 });
console.log(r.text);
console.log(`— ${r.model}, ${r.usage.input_tokens} tokens in, ${r.usage.output_tokens} out, $${r.cost_usd}`);

await client.close();
