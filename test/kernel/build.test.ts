/**
 * The bundled build is what `daemon-control start` runs, while the other tests run the sources: the
 * places where the two differ must give the same answers. Here: the shipped YAML files, which the
 * build embeds pre-parsed (daemon/yaml-text.ts), and a user's YAML, which it still parses.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtDaemonArgs, ensureBuilt } from '../../daemon/build.js';
import { ROOT, startDaemon, tempHome, type DaemonHandle } from '../helpers/daemon-process.js';

const home = tempHome('agentd-build-');
fs.writeFileSync(path.join(home, 'my-prices.yaml'), 'models:\n  my-local-model:\n    input: 0.5\n    output: 1.5\n');
const config = `daemon:\n  log_level: warn\nbudget:\n  prices_file: ${path.join(home, 'my-prices.yaml')}\n`;
let built: DaemonHandle;
let sources: DaemonHandle;

beforeAll(async () => {
  const { entry } = await ensureBuilt(ROOT);
  const env = { AGENTD_SANDBOX_DOCKER_SOCKET: '/nonexistent/docker.sock' };
  [built, sources] = await Promise.all([
    startDaemon({ home, config, env, nodeArgs: builtDaemonArgs(entry) }),
    startDaemon({ config, env }),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all([built?.stop(), sources?.stop()]);
});

describe('the bundled build', () => {
  it('prices: the shipped table (pre-parsed) and a user price file (parsed) read as from the sources', async () => {
    const [b, s] = await Promise.all([
      built.client.request('budget:prices', {}),
      sources.client.request('budget:prices', {}),
    ]);
    expect(b).toEqual(s);
    const models = (b as { prices: Record<string, { input: number; output: number }> }).prices;
    expect(models['my-local-model']).toMatchObject({ input: 0.5, output: 1.5 });
    expect(Object.keys(models).filter((m) => m.startsWith('claude-')).length).toBeGreaterThan(3);
  });

  it('agent profiles: the shipped ones load as from the sources', async () => {
    const [b, s] = await Promise.all([
      built.client.request('agent:profiles', {}),
      sources.client.request('agent:profiles', {}),
    ]);
    expect(b).toEqual(s);
    const names = (b as { profiles: Array<{ name: string }> }).profiles.map((p) => p.name).sort();
    expect(names).toEqual(
      fs
        .readdirSync(path.join(ROOT, 'profiles'))
        .filter((f) => /\.ya?ml$/.test(f))
        .map((f) => f.replace(/\.ya?ml$/, ''))
        .sort(),
    );
  });
});
