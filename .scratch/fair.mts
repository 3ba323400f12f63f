import { startDaemon } from '/work/wt/hardening/test/helpers/daemon-process.js';
import { loadGraph, runLoad } from '/work/wt/hardening/test/helpers/fairness-load.js';
const REAL = ['completion', 'budget', 'sandbox', 'kg', 'agent', 'checkpoint', 'bridge'];
const root = process.argv[2] ?? '/work/wt/hardening';
const d = await startDaemon({ config: `daemon:\n  disabled_plugins: ${JSON.stringify(REAL.filter((p) => p !== 'kg'))}\n`, readyTimeoutMs: 60000, nodeArgs: ['--import', 'tsx', `${root}/daemon/main.ts`] });
await loadGraph(d.socketPath, 40000);
const c = await d.connect();
for (const ev of ['kg:stats','kg:find','kg:neighbors','kg:get']) {
  const data = ev==='kg:find'?{label:'Paper',limit:20}:ev==='kg:neighbors'?{id:'n5',depth:2,limit:200}:ev==='kg:get'?{id:'n5'}:{};
  const t=performance.now(); for (let i=0;i<50;i++) await c.request(ev as never, data); console.log(ev, ((performance.now()-t)/50).toFixed(2),'ms');
}
console.log('floor', JSON.stringify(await runLoad(d.socketPath, { mix: 'kg', nodes: 40000, seconds: 2, hog: false })));
console.log('loaded', JSON.stringify(await runLoad(d.socketPath, { mix: 'kg', nodes: 40000, seconds: 5 })));
await c.close();
await d.stop();
