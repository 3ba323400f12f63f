import YAML from 'yaml';
import { startDaemon } from '../test/helpers/daemon-process.js';
import { builtDaemonArgs, ensureBuilt } from '../daemon/build.js';
const config = YAML.stringify({ daemon: { log_level: 'warn', disabled_plugins: ['sandbox', 'bridge', 'completion', 'agent', 'kg'] }, workflow: { watch: false } });
const d = await startDaemon({ config, readyTimeoutMs: 90_000, nodeArgs: process.env.SRC ? undefined : builtDaemonArgs((await ensureBuilt(process.cwd())).entry) });
const chain = { name: 'p', steps: Array.from({ length: 200 }, (_, i) => ({ id: `s${i}`, event: 'system:ping', ...(i ? { needs: [`s${i - 1}`] } : {}) })) };
for (let r = 0; r < 15; r++) {
  const t0 = performance.now();
  await d.client.request('workflow:start', { definition: chain, wait: true }, { timeoutMs: 600000 });
  const t1 = performance.now();
  for (let i = 0; i < 200; i++) await d.client.request('system:ping', {});
  const t2 = performance.now();
  console.log(((t1 - t0) / 200).toFixed(3), ((t2 - t1) / 200).toFixed(3));
}
await d.stop();
