import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, loadConfig, parseSection, unknownKeys } from '../../daemon/config.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-config-'));
const write = (s: string): string => {
  const f = path.join(dir, `c${Math.random()}.yaml`);
  fs.writeFileSync(f, s);
  return f;
};

describe('config', () => {
  it('reads sections and lets AGENTD_<SECTION>_<KEY> override them, typed', async () => {
    const f = write('daemon:\n  max_frame_bytes: 2048\nsandbox:\n  pool_size: 2\n  limits:\n    memory_mb: 256\n');
    const c = await loadConfig(
      {
        AGENTD_CONFIG: f,
        AGENTD_HOME: dir,
        AGENTD_SANDBOX_POOL_SIZE: '4',
        AGENTD_SANDBOX_LIMITS__CPUS: '1.5',
        AGENTD_DAEMON_DEV: 'true',
      },
      dir,
    );
    expect(c.daemon.max_frame_bytes).toBe(2048);
    expect(c.daemon.dev).toBe(true);
    expect(c.raw.sandbox).toEqual({ pool_size: 4, limits: { memory_mb: 256, cpus: 1.5 } });
    expect(c.paths.socket).toBe(path.join(dir, 'run', 'daemon.sock'));
  });
  it('takes secrets from the environment verbatim', async () => {
    const c = await loadConfig(
      { AGENTD_HOME: dir, AGENTD_KG_NEO4J__PASSWORD: '0123', AGENTD_COMPLETION_API_KEY: 'true' },
      dir,
    );
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

describe('config keys', () => {
  const schema = z.object({
    pool_size: z.coerce.number().default(2),
    limits: z.object({ memory_mb: z.number().optional(), max_cpus: z.number().optional() }).default({}),
    models: z.record(z.string(), z.string()).default({}),
    extra: z.looseObject({ a: z.number().optional() }).optional(),
    rules: z.array(z.object({ scope: z.string(), limit_usd: z.number().optional() })).default([]),
    gated: z.preprocess((v) => v, z.object({ on: z.boolean().optional() })).optional(),
  });
  it.each([
    [{ pool_size: 1 }, []],
    [{ pool_sise: 1 }, [{ path: 'pool_sise', suggestion: 'pool_size' }]],
    [{ limits: { memroy_mb: 3 } }, [{ path: 'limits.memroy_mb', suggestion: 'memory_mb' }]],
    [{ models: { anything: 'x' } }, []],
    [{ extra: { whatever: 1 } }, []],
    [
      { rules: [{ scope: 'global' }, { scope: 'agent', limit_usdd: 1 }] },
      [{ path: 'rules.1.limit_usdd', suggestion: 'limit_usd' }],
    ],
    [{ gated: { onn: true } }, [{ path: 'gated.onn', suggestion: 'on' }]],
  ])('unknownKeys(%j)', (value, expected) => {
    expect(unknownKeys(schema, value)).toEqual(expected);
  });
  it("a file key no setting has fails its section; the same name from the environment is not the file's mistake", async () => {
    const f = write('daemon:\n  log_levl: debug\n');
    await expect(loadConfig({ AGENTD_CONFIG: f, AGENTD_HOME: dir }, dir)).rejects.toThrow(
      'config section "daemon": unknown key log_levl (did you mean log_level?)',
    );
    const c = await loadConfig({ AGENTD_HOME: dir, AGENTD_DAEMON_LOG_LEVL: 'debug' }, dir);
    expect(c.daemon.log_level).toBe('info');
  });
  it("a bad value names the environment variable it came from, never a secret's value", async () => {
    await expect(loadConfig({ AGENTD_HOME: dir, AGENTD_DAEMON_MAX_FRAME_BYTES: 'lots' }, dir)).rejects.toThrow(
      '(from AGENTD_DAEMON_MAX_FRAME_BYTES="lots")',
    );
    const c = await loadConfig({ AGENTD_HOME: dir, AGENTD_KG_NEO4J__PASSWORD: 'hunter2' }, dir);
    const r = parseSection('kg', z.object({ neo4j: z.object({ password: z.number() }) }), c.raw.kg!);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reason).toContain('(from AGENTD_KG_NEO4J__PASSWORD)');
      expect(r.reason).not.toContain('hunter2');
    }
  });
});
