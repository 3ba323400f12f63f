/** Small helpers shared by the completion and budget integration tests. */
import YAML from 'yaml';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/daemon-process.js';
export { waitFor, collect, errorOf, codeOf } from '../helpers/events.js';

type Sections = Record<string, Record<string, unknown>>;

/** Every other plugin is disabled: these tests stay fast and do not depend on Docker, Neo4j, etc. */
function otherPlugins(): string[] {
  const dir = path.join(ROOT, 'plugins');
  return fs
    .readdirSync(dir)
    .filter((n) => n !== 'budget' && n !== 'completion' && fs.existsSync(path.join(dir, n, 'index.ts')));
}

/** agentd.yaml with a cheap test model priced ($1 in, $2 out per MTok), merged with `extra` sections. */
export function testConfig(extra: Sections = {}): string {
  const base: Sections = {
    daemon: { disabled_plugins: otherPlugins() },
    budget: { prices: { 'test-model': { input: 1, output: 2 } } },
    completion: { default_model: 'test-model', max_retries: 1 },
  };
  for (const [k, v] of Object.entries(extra)) base[k] = { ...base[k], ...v };
  return YAML.stringify(base);
}

export const SECRET_KEY = 'sk-ant-test-DO-NOT-LOG-4f2a9c';
