import { harness } from '../test/workflow/harness.js';
const h = harness();
h.perform.fn = async () => { console.log('perform'); return {}; };
const id = await h.start({ name: 'x', steps: [{ id: 'a', event: 'test:op' }] });
await new Promise((r) => setTimeout(r, 300));
console.log(h.events.map((e) => e.event));
console.log(await h.engine.status(id));
