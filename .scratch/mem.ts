import fs from 'node:fs';
import YAML from 'yaml';
import { startDaemon } from '../test/helpers/daemon-process.js';
import { builtDaemonArgs, ensureBuilt } from '../daemon/build.js';
const config = YAML.stringify({ router: { history_size: 0 }, daemon: { log_level: 'warn', disabled_plugins: ['sandbox', 'bridge', 'completion', 'agent', 'kg'] }, workflow: { watch: false } });
const d = await startDaemon({ config, readyTimeoutMs: 90_000, nodeArgs: builtDaemonArgs((await ensureBuilt(process.cwd())).entry) });
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${d.proc.pid}/status`, 'utf8'))![1]) / 1024;
const chain = { name: 'm', steps: Array.from({ length: 5 }, (_, i) => ({ id: `s${i}`, event: 'system:ping', ...(i ? { needs: [`s${i - 1}`] } : {}) })) };
for (let b = 0; b < 12; b++) {
  await Promise.all(Array.from({ length: 100 }, () => d.client.request('workflow:start', { definition: chain, wait: true }, { timeoutMs: 600000 })));
  const h = await d.client.request<{ memory?: { heap_mb?: number } }>('system:health', {});
  console.log(b, rss().toFixed(1), JSON.stringify(h.memory));
}
await d.stop();
