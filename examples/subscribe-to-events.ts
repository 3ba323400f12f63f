/**
 * Subscribe to events and print them as they arrive. To have something to show, it writes three
 * nodes into the knowledge graph itself; point it at a busy daemon with a pattern instead:
 *
 *   npx tsx examples/subscribe-to-events.ts            # kg:* and a little traffic of its own
 *   npx tsx examples/subscribe-to-events.ts 'agent:*'  # wait for 5 agent events
 */
import { EventClient } from 'agentd/client';

const pattern = process.argv[2];
const want = 5;
const client = await EventClient.connect();

// Patterns: ns:action, ns:* (one segment), ns:** (any depth), * (everything).
const sub = await client.subscribe(pattern ? [pattern] : ['kg:*', 'system:*']);
if (!pattern) {
  for (const name of ['alpha', 'beta', 'gamma']) {
    await client.request('kg:add_nodes', {
      nodes: [{ id: `example-${name}`, label: 'Concept', properties: { name } }],
    });
  }
}

let seen = 0;
for await (const ev of sub) {
  console.log(`#${ev.seq} ${ev.event} ${JSON.stringify(ev.data)}`);
  if (++seen === (pattern ? want : 3)) break; // leaving the loop ends the subscription
}
await client.close();
