import YAML from 'yaml';
import { startDaemon } from '../test/helpers/daemon-process.js';
import { builtDaemonArgs, ensureBuilt } from '../daemon/build.js';
const config = YAML.stringify({ daemon: { log_level: 'warn', disabled_plugins: ['sandbox', 'bridge', 'completion', 'agent', 'kg'] }, workflow: { watch: false } });
const d = await startDaemon({ config, readyTimeoutMs: 90_000, nodeArgs: builtDaemonArgs((await ensureBuilt(process.cwd())).entry) });
const fe = { name: 'fe', inputs: { l: { type: 'array' } }, steps: [{ id: 'each', event: 'system:ping', foreach: '{{ inputs.l }}', concurrency: 50 }] };
const chain = { name: 'p', steps: Array.from({ length: 200 }, (_, i) => ({ id: `s${i}`, event: 'system:ping', ...(i ? { needs: [`s${i - 1}`] } : {}) })) };
for (let r = 0; r < 8; r++) {
  const t0 = performance.now();
  await d.client.request('workflow:start', { definition: fe, inputs: { l: Array.from({ length: 1000 }, (_, i) => i) }, wait: true }, { timeoutMs: 600000 });
  const t1 = performance.now();
  await d.client.request('workflow:start', { definition: chain, wait: true }, { timeoutMs: 600000 });
  const t2 = performance.now();
  console.log('fe per item', ((t1 - t0) / 1000).toFixed(3), 'chain per step', ((t2 - t1) / 200).toFixed(3));
}
await d.stop();
