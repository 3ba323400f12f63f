import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../daemon/config.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-config-'));
const write = (s: string): string => {
  const f = path.join(dir, `c${Math.random()}.yaml`);
  fs.writeFileSync(f, s);
  return f;
};

describe('config', () => {
  it('reads sections and lets AGENTD_<SECTION>_<KEY> override them, typed', async () => {
    const f = write('daemon:\n  max_frame_bytes: 2048\nsandbox:\n  pool_size: 2\n  limits:\n    memory_mb: 256\n');
    const c = await loadConfig({ AGENTD_CONFIG: f, AGENTD_HOME: dir, AGENTD_SANDBOX_POOL_SIZE: '4', AGENTD_SANDBOX_LIMITS__CPUS: '1.5', AGENTD_DAEMON_DEV: 'true' }, dir);
    expect(c.daemon.max_frame_bytes).toBe(2048);
    expect(c.daemon.dev).toBe(true);
    expect(c.raw.sandbox).toEqual({ pool_size: 4, limits: { memory_mb: 256, cpus: 1.5 } });
    expect(c.paths.socket).toBe(path.join(dir, 'run', 'daemon.sock'));
  });
  it('takes secrets from the environment verbatim', async () => {
    const c = await loadConfig({ AGENTD_HOME: dir, AGENTD_KG_NEO4J__PASSWORD: '0123', AGENTD_COMPLETION_API_KEY: 'true' }, dir);
    expect(c.raw.kg).toEqual({ neo4j: { password: '0123' } });
    expect(c.raw.completion).toEqual({ api_key: 'true' });
  });
  it('defaults everything when there is no file', async () => {
    const c = await loadConfig({ AGENTD_HOME: dir }, dir);
    expect(c.daemon.max_frame_bytes).toBe(1024 * 1024);
    expect(c.router.max_depth).toBeGreaterThan(0);
  });
  it.each([
    ['daemon: [1, 2]\n', /section "daemon" must be a mapping/],
    ['daemon:\n  max_frame_bytes: -5\n', /max_frame_bytes/],
    ['{ not yaml', /not valid YAML/],
  ])('refuses bad config %j with a clear message', async (text, re) => {
    await expect(loadConfig({ AGENTD_CONFIG: write(text), AGENTD_HOME: dir }, dir)).rejects.toThrow(ConfigError);
    await expect(loadConfig({ AGENTD_CONFIG: write(text), AGENTD_HOME: dir }, dir)).rejects.toThrow(re);
  });
  it('refuses a named config file that does not exist', async () => {
    await expect(loadConfig({ AGENTD_CONFIG: path.join(dir, 'missing.yaml') }, dir)).rejects.toThrow(/no such file/);
  });
  it('an empty or blank file is the defaults', async () => {
    const c = await loadConfig({ AGENTD_CONFIG: write('  \n\n'), AGENTD_HOME: dir }, dir);
    expect(c.daemon.max_frame_bytes).toBe(1024 * 1024);
  });
});
