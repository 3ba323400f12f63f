/**
 * Build a small research graph and query it: neighbours, a shortest path, a filtered find.
 *
 *   npx tsx examples/knowledge-graph.ts
 */
import { EventClient } from 'agentd/client';

interface Node {
  id: string;
  label: string;
  properties: Record<string, unknown>;
  depth?: number;
}

const client = await EventClient.connect();

await client.request('kg:add_nodes', {
  nodes: [
    { id: 'ex-paper', label: 'Paper', properties: { title: 'Attention Is All You Need', year: 2017 } },
    { id: 'ex-attention', label: 'Concept', properties: { name: 'self-attention' } },
    { id: 'ex-hypothesis', label: 'Hypothesis', properties: { statement: 'attention replaces recurrence' } },
    { id: 'ex-finding', label: 'Finding', properties: { statement: 'BLEU 28.4 on WMT14 en-de' } },
  ],
});
// Adding again is idempotent: ids and (from, type, to) triples are unique.
await client.request('kg:add_edges', {
  edges: [
    { from: 'ex-paper', to: 'ex-attention', type: 'MENTIONS' },
    { from: 'ex-hypothesis', to: 'ex-attention', type: 'RELATES_TO' },
    { from: 'ex-finding', to: 'ex-hypothesis', type: 'SUPPORTS' },
    { from: 'ex-finding', to: 'ex-paper', type: 'DERIVED_FROM' },
  ],
});

const near = await client.request<{ nodes: Node[] }>('kg:neighbors', { id: 'ex-attention', depth: 2 });
console.log('around self-attention:', near.nodes.map((n) => `${n.label}:${n.id} (depth ${n.depth})`).join(', '));

const path = await client.request<{ found: boolean; nodes: Node[] }>('kg:path', {
  from: 'ex-paper',
  to: 'ex-hypothesis',
  direction: 'both',
});
console.log('paper → hypothesis:', path.found ? path.nodes.map((n) => n.id).join(' → ') : 'no path');

const findings = await client.request<{ nodes: Node[] }>('kg:find', { label: 'Finding' });
console.log('findings:', findings.nodes.map((n) => n.properties.statement).join('; '));

console.log('graph:', await client.request('kg:stats'));
await client.close();
