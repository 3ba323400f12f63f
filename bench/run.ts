/**
 * `npm run bench` — every benchmark, each beside its baseline in the same run; prints one JSON
 * document. `--quick` runs them briefly (CI checks they work; they are not timed tests).
 * `--only router,kg` selects suites.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const onlyArg = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const only = onlyArg ? new Set(onlyArg.split(',')) : null;

const suites: Array<[name: string, file: string, fn: string]> = [
  ['router', 'router.ts', 'benchRouter'],
  ['fanout', 'fanout.ts', 'benchFanout'],
  ['cli', 'cli.ts', 'benchCli'],
  ['fairness', 'fairness.ts', 'benchFairness'],
  ['completion', 'completion.ts', 'benchCompletion'],
  ['completion_writes', 'completion-writes.ts', 'benchCompletionWrites'],
  ['sandbox', 'sandbox.ts', 'benchSandbox'],
  ['kg', 'kg.ts', 'benchKg'],
  ['checkpoint', 'checkpoint.ts', 'benchCheckpoint'],
  ['checkpoint_full', 'checkpoint-full.ts', 'benchCheckpointFull'],
  ['agent', 'agent.ts', 'benchAgent'],
  ['bridge', 'bridge.ts', 'benchBridge'],
  ['workflow', 'workflow.ts', 'benchWorkflow'],
  ['mcp', 'mcp.ts', 'benchMcp'],
  ['trace', 'trace.ts', 'benchTrace'],
  ['gateway', 'gateway.ts', 'benchGateway'],
];

const report: Record<string, unknown> = {
  quick,
  started_at: new Date().toISOString(),
  node: process.version,
  cpus: (await import('node:os')).cpus().length,
};
let failed = 0;
for (const [name, file, fn] of suites) {
  if (only && !only.has(name)) continue;
  if (!fs.existsSync(path.join(here, file))) continue;
  const t0 = Date.now();
  try {
    const mod = (await import(path.join(here, file))) as Record<
      string,
      (o: { quick: boolean }) => Promise<Record<string, unknown>>
    >;
    report[name] = { ...(await mod[fn]({ quick })), suite_s: Math.round((Date.now() - t0) / 100) / 10 };
  } catch (e) {
    failed++;
    report[name] = { error: (e as Error).stack ?? String(e) };
  }
  process.stderr.write(`bench: ${name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}
// Synchronous: process.exit would cut an asynchronous write to a pipe or file.
fs.writeSync(1, JSON.stringify(report, null, 2) + '\n');
process.exit(failed ? 1 : 0);
