import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { startMessagesApiServer } from '../test/fixtures/messages-api-server.js';
import { ROOT, startDaemon, tempHome } from '../test/helpers/daemon-process.js';
import { scriptedModel } from '../test/workflow/scripted-model.js';

const home = tempHome('agentd-wf-docs-');
const api = await startMessagesApiServer();
api.setHandler((r) => ({ ...scriptedModel(r), delayMs: 150 }));
const config = YAML.stringify({
  daemon: { disabled_plugins: ['bridge'] },
  budget: { prices: { 'test-model': { input: 3, output: 15 } } },
  completion: { default_model: 'test-model', max_retries: 0 },
  agent: { watch_profiles: false, default_model: 'test-model' },
  sandbox: { pool_size: 0 },
  workflow: { planner_model: 'test-model' },
});
const d = await startDaemon({ home, config, env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: 'local' }, readyTimeoutMs: 90_000 });
fs.mkdirSync(path.join(home, 'study', 'data'), { recursive: true });
fs.mkdirSync(path.join(home, 'study', 'notes'), { recursive: true });
fs.writeFileSync(path.join(home, 'study', 'data', 'data.csv'), 'a,b,c\n1,5,2\n2,6,9\n3,7,1\n');
fs.writeFileSync(path.join(home, 'study', 'notes', 'means-of-small-tables.md'), 'Column b tends to exceed column a.\n');
const ctl = (...args: string[]) => new Promise<void>((resolve) => {
  const p = spawn(path.join(ROOT, 'daemon-control.ts'), args, { cwd: path.join(home, 'study'), env: { ...process.env, AGENTD_SOCKET: d.socketPath } });
  let out = '';
  p.stdout.on('data', (b) => (out += b));
  p.stderr.on('data', (b) => (out += b));
  p.on('exit', (code) => {
    console.log(`$ daemon-control ${args.map((a) => (/[\s"'{]/.test(a) ? `'${a}'` : a)).join(' ')}`);
    console.log(out.trimEnd());
    console.log(`(exit ${code})\n`);
    resolve();
  });
});
await ctl('run', 'research', '--input', 'question=Which column means of the table are large?', '--input', 'dataset=@data', '--input', 'papers=@notes', '--input', 'hypotheses=3', '--budget', '2', '--run-id', 'research-1');
await ctl('run', 'status', 'research-1');
const st = await d.client.request('workflow:status', { run_id: 'research-1' });
console.log('OUTPUTS', JSON.stringify((st as { outputs: unknown }).outputs, null, 2));
const kg = await d.client.request('kg:neighbors', { id: 'research-1-report', direction: 'out', types: ['CITES'], include_edges: true });
console.log('REPORT CITES', JSON.stringify(kg, null, 1).slice(0, 1500));
await ctl('run', 'debate', '--input', 'motion=Peer review should be double-blind', '--run-id', 'debate-1');
await ctl('run', 'plan-execute-critic', '--input', 'goal=Sum the primes below 100', '--run-id', 'pec-1');
const pec = await d.client.request('workflow:status', { run_id: 'pec-1' });
console.log('PEC OUTPUTS', JSON.stringify((pec as { outputs: unknown }).outputs, null, 2));
await ctl('runs');
await d.stop();
await api.close();
