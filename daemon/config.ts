/**
 * Configuration: `agentd.yaml` (or the file AGENTD_CONFIG names), one section per plugin, every value
 * overridable by AGENTD_<SECTION>_<KEY> (nested keys joined by a double underscore).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseYamlText, prepareYaml } from './yaml-text.js';
import { z } from 'zod';
import { DEFAULT_MAX_FRAME_BYTES } from '../client/protocol.js';
import { formatIssues } from '../client/issues.js';
import { resolveSocketPath } from '../client/socket-path.js';

/** The checkout (where package.json, plugins/ and profiles live), whether running from sources or from `.build/`. */
function findRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(start, '..');
  }
}
export const ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));

/** Environment names that are not section overrides. */
const RESERVED_ENV = new Set(['AGENTD_HOME', 'AGENTD_SOCKET', 'AGENTD_CONFIG', 'AGENTD_FOREGROUND']);

export const daemonSectionSchema = z.object({
  socket: z.string().optional().register(z.globalRegistry, { description: 'Socket path (default $AGENTD_HOME/run/daemon.sock)' }),
  max_frame_bytes: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(DEFAULT_MAX_FRAME_BYTES),
  max_inflight_per_connection: z.coerce.number().int().min(1).max(100_000).default(1024),
  subscriber_queue: z.coerce.number().int().min(10).max(1_000_000).default(10_000),
  max_connections: z.coerce.number().int().min(1).default(1024),
  shutdown_timeout_ms: z.coerce.number().int().min(100).default(30_000),
  plugin_start_timeout_ms: z.coerce.number().int().min(100).default(30_000),
  plugin_dirs: z.array(z.string()).default([]),
  disabled_plugins: z.array(z.string()).default([]),
  dev: z.coerce.boolean().default(false).register(z.globalRegistry, { description: 'Watch plugin folders and hot-reload changed plugins' }),
  check_responses: z.coerce.boolean().default(false).register(z.globalRegistry, { description: 'Check every answer against its event\'s response schema (a mismatch answers HANDLER_ERROR); for development and tests' }),
  log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
});

export const routerSectionSchema = z.object({
  max_depth: z.coerce.number().int().min(1).max(10_000).default(32),
  history_size: z.coerce.number().int().min(0).max(1_000_000).default(10_000),
  default_timeout_ms: z.coerce.number().int().min(1).default(30_000),
});

export type DaemonSection = z.infer<typeof daemonSectionSchema>;
export type RouterSection = z.infer<typeof routerSectionSchema>;

export interface Paths {
  root: string;
  home: string;
  run: string;
  logs: string;
  db: string;
  socket: string;
  pidFile: string;
  configFile: string;
}

export interface Config {
  raw: Record<string, Record<string, unknown>>;
  daemon: DaemonSection;
  router: RouterSection;
  paths: Paths;
}

export class ConfigError extends Error {}

const SECRET_KEY_RE = /(password|secret|token|api_key|apikey|key_file|credentials)$/;

/** Parse an env value like YAML would (numbers, booleans, lists), falling back to the string. */
function parseEnvValue(v: string): unknown {
  try {
    const parsed: unknown = parseYamlText(v);
    return parsed === null ? v : parsed;
  } catch {
    return v;
  }
}

/** The AGENTD_<SECTION>_<KEY>[__<KEY>…] variables that override config, with where each goes. */
function* envOverrides(env: NodeJS.ProcessEnv): Generator<{ section: string; keys: string[]; value: string; secret: boolean }> {
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('AGENTD_') || RESERVED_ENV.has(name) || value === undefined) continue;
    const rest = name.slice('AGENTD_'.length).toLowerCase();
    const i = rest.indexOf('_');
    if (i <= 0 || i === rest.length - 1) continue;
    const keys = rest.slice(i + 1).split('__').filter(Boolean);
    if (keys.length === 0) continue;
    // Secrets are taken verbatim: YAML would turn a password "0123" into 123 or "true" into a boolean.
    yield { section: rest.slice(0, i), keys, value, secret: SECRET_KEY_RE.test(keys[keys.length - 1]) };
  }
}

export function applyEnvOverrides(raw: Record<string, Record<string, unknown>>, env: NodeJS.ProcessEnv): void {
  for (const { section, keys, value, secret } of envOverrides(env)) {
    let node: Record<string, unknown> = (raw[section] ??= {});
    for (const k of keys.slice(0, -1)) {
      const next = node[k];
      node = (typeof next === 'object' && next !== null && !Array.isArray(next) ? next : (node[k] = {})) as Record<string, unknown>;
    }
    node[keys[keys.length - 1]] = secret ? value : parseEnvValue(value);
  }
}

export async function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<Config> {
  const configFile = path.resolve(cwd, env.AGENTD_CONFIG ?? 'agentd.yaml');
  const text = fs.existsSync(configFile) ? fs.readFileSync(configFile, 'utf8') : null;
  await prepareYaml([text ?? '', ...[...envOverrides(env)].filter((o) => !o.secret).map((o) => o.value)]);
  let raw: Record<string, Record<string, unknown>> = {};
  if (text !== null) {
    let doc: unknown;
    try {
      doc = parseYamlText(text);
    } catch (e) {
      throw new ConfigError(`${configFile}: not valid YAML: ${(e as Error).message}`);
    }
    if (doc !== null && doc !== undefined) {
      if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`${configFile}: must be a mapping of sections`);
      raw = doc as Record<string, Record<string, unknown>>;
    }
  } else if (env.AGENTD_CONFIG) {
    throw new ConfigError(`${configFile}: no such file (named by AGENTD_CONFIG)`);
  }
  for (const [k, v] of Object.entries(raw)) {
    if (v === null) raw[k] = {};
    else if (typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`${configFile}: section "${k}" must be a mapping`);
  }
  applyEnvOverrides(raw, env);

  const d = daemonSectionSchema.safeParse(raw.daemon ?? {});
  if (!d.success) throw new ConfigError(`daemon section: ${formatIssues(d.error.issues, { root: '(section)' })}`);
  const r = routerSectionSchema.safeParse(raw.router ?? {});
  if (!r.success) throw new ConfigError(`router section: ${formatIssues(r.error.issues, { root: '(section)' })}`);

  const home = path.resolve(cwd, env.AGENTD_HOME ?? 'var');
  const run = path.join(home, 'run');
  const socket = resolveSocketPath({ env, cwd, configured: d.data.socket });
  return {
    raw,
    daemon: d.data,
    router: r.data,
    paths: {
      root: ROOT,
      home,
      run,
      logs: path.join(home, 'logs'),
      db: path.join(home, 'db'),
      socket,
      pidFile: path.join(run, 'daemon.pid'),
      configFile,
    },
  };
}
