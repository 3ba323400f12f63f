/**
 * Configuration: `agentd.yaml` (or the file AGENTD_CONFIG names), one section per plugin, every value
 * overridable by AGENTD_<SECTION>_<KEY> (nested keys joined by a double underscore).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseYamlText, prepareYaml } from './yaml-text.js';
import { z } from 'zod';
import { closest } from 'fastest-levenshtein';
import { DEFAULT_MAX_FRAME_BYTES } from '../client/protocol.js';
import { resolveSocketPath } from '../client/socket-path.js';
import { DEFAULT_MAX_JSON_DEPTH } from './frames.js';

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
  socket: z
    .string()
    .optional()
    .register(z.globalRegistry, { description: 'Socket path (default $AGENTD_HOME/run/daemon.sock)' }),
  max_frame_bytes: z.coerce
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(DEFAULT_MAX_FRAME_BYTES),
  max_inflight_per_connection: z.coerce.number().int().min(1).max(100_000).default(1024),
  subscriber_queue: z.coerce.number().int().min(10).max(1_000_000).default(10_000),
  max_connections: z.coerce.number().int().min(1).default(1024).register(z.globalRegistry, {
    description: 'Client connections at once; one more gets a final OVERLOADED frame and is closed',
  }),
  max_json_depth: z.coerce.number().int().min(8).max(1000).default(DEFAULT_MAX_JSON_DEPTH).register(z.globalRegistry, {
    description: 'Levels of objects and arrays a request frame may nest (deeper: INVALID_DATA, checked before parsing)',
  }),
  connection_buffer_bytes: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .default(8 * 1024 * 1024)
    .register(z.globalRegistry, {
      description: 'Answers unread by a client past which its next requests wait (it is not read meanwhile)',
    }),
  connection_buffer_max_bytes: z.coerce
    .number()
    .int()
    .min(128 * 1024)
    .default(32 * 1024 * 1024)
    .register(z.globalRegistry, {
      description: 'Answers unread by a client past which it gets a final OVERLOADED frame and is closed',
    }),
  max_answer_bytes: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .max(1024 * 1024 * 1024)
    .default(16 * 1024 * 1024)
    .register(z.globalRegistry, {
      description: 'Largest answer frame; a bigger answer is refused with FRAME_TOO_LARGE (ask for a smaller page)',
    }),
  shutdown_timeout_ms: z.coerce.number().int().min(100).default(30_000),
  plugin_start_timeout_ms: z.coerce.number().int().min(100).default(30_000),
  plugin_dirs: z.array(z.string()).default([]),
  disabled_plugins: z.array(z.string()).default([]),
  dev: z.coerce
    .boolean()
    .default(false)
    .register(z.globalRegistry, { description: 'Watch plugin folders and hot-reload changed plugins' }),
  check_responses: z.coerce.boolean().default(false).register(z.globalRegistry, {
    description:
      "Check every answer against its event's response schema (a mismatch answers HANDLER_ERROR); for development and tests",
  }),
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
  /** The sections the config file has (checked against the plugins found, see unknownSections). */
  fileSections: string[];
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
function* envOverrides(
  env: NodeJS.ProcessEnv,
): Generator<{ name: string; section: string; keys: string[]; value: string; secret: boolean }> {
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('AGENTD_') || RESERVED_ENV.has(name) || value === undefined) continue;
    const rest = name.slice('AGENTD_'.length).toLowerCase();
    const i = rest.indexOf('_');
    if (i <= 0 || i === rest.length - 1) continue;
    const keys = rest
      .slice(i + 1)
      .split('__')
      .filter(Boolean);
    if (keys.length === 0) continue;
    // Secrets are taken verbatim: YAML would turn a password "0123" into 123 or "true" into a boolean.
    yield { name, section: rest.slice(0, i), keys, value, secret: SECRET_KEY_RE.test(keys[keys.length - 1]) };
  }
}

/** An environment variable a config value came from, as an error message may show it. */
export type EnvSource = { name: string; shown: string };

export function applyEnvOverrides(
  raw: Record<string, Record<string, unknown>>,
  env: NodeJS.ProcessEnv,
): Map<string, EnvSource> {
  const names = new Map<string, EnvSource>();
  for (const { name, section, keys, value, secret } of envOverrides(env)) {
    // A secret's value never appears in a message, even when it is invalid.
    names.set([section, ...keys].join('.'), { name, shown: secret ? name : `${name}=${JSON.stringify(value)}` });
    let node: Record<string, unknown> = (raw[section] ??= {});
    for (const k of keys.slice(0, -1)) {
      const next = node[k];
      node = (typeof next === 'object' && next !== null && !Array.isArray(next) ? next : (node[k] = {})) as Record<
        string,
        unknown
      >;
    }
    node[keys[keys.length - 1]] = secret ? value : parseEnvValue(value);
  }
  return names;
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
      if (typeof doc !== 'object' || Array.isArray(doc))
        throw new ConfigError(`${configFile}: must be a mapping of sections`);
      raw = doc as Record<string, Record<string, unknown>>;
    }
  } else if (env.AGENTD_CONFIG) {
    throw new ConfigError(`${configFile}: no such file (named by AGENTD_CONFIG)`);
  }
  for (const [k, v] of Object.entries(raw)) {
    if (v === null) raw[k] = {};
    else if (typeof v !== 'object' || Array.isArray(v))
      throw new ConfigError(`${configFile}: section "${k}" must be a mapping`);
  }
  const fromFile = structuredClone(raw);
  const envNames = applyEnvOverrides(raw, env);
  for (const section of ['daemon', 'router']) raw[section] ??= {};
  for (const [section, values] of Object.entries(raw))
    origins.set(values, { section, file: fromFile[section] ?? {}, env: envNames });

  const d = parseSection('daemon', daemonSectionSchema, raw.daemon!);
  if (!d.ok) throw new ConfigError(d.reason);
  if (d.data.connection_buffer_max_bytes <= d.data.connection_buffer_bytes) {
    throw new ConfigError(
      `daemon section: connection_buffer_max_bytes (${d.data.connection_buffer_max_bytes}) must be above connection_buffer_bytes (${d.data.connection_buffer_bytes})`,
    );
  }
  const r = parseSection('router', routerSectionSchema, raw.router!);
  if (!r.ok) throw new ConfigError(r.reason);

  const home = path.resolve(cwd, env.AGENTD_HOME ?? 'var');
  const run = path.join(home, 'run');
  const socket = resolveSocketPath({ env, cwd, configured: d.data.socket });
  return {
    raw,
    fileSections: Object.keys(fromFile),
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

/** Where a section's values came from: the file's part of it, and the environment variables by dotted path. */
interface Origin {
  section: string;
  file: Record<string, unknown>;
  env: Map<string, EnvSource>;
}
const origins = new WeakMap<object, Origin>();

type AnySchema = z.core.$ZodType;

/** The object schema under wrappers (optional, default, pipe, lazy, …), or null when it is not one. */
function objectShapeOf(schema: AnySchema): { shape: Record<string, AnySchema>; open: boolean } | null {
  let s: AnySchema | undefined = schema;
  for (let i = 0; s && i < 20; i++) {
    const def = s._zod.def as unknown as Record<string, unknown> & { type: string };
    switch (def.type) {
      case 'object': {
        const catchall = def.catchall as AnySchema | undefined;
        return {
          shape: def.shape as Record<string, AnySchema>,
          open: catchall !== undefined && catchall._zod.def.type !== 'never',
        };
      }
      case 'optional':
      case 'nullable':
      case 'default':
      case 'prefault':
      case 'catch':
      case 'readonly':
      case 'nonoptional':
        s = def.innerType as AnySchema;
        break;
      case 'pipe': {
        const inner = def.in as AnySchema;
        s = inner._zod.def.type === 'transform' ? (def.out as AnySchema) : inner;
        break;
      }
      case 'lazy':
        s = (def.getter as () => AnySchema)();
        break;
      default:
        return null;
    }
  }
  return null;
}

function elementOf(schema: AnySchema): AnySchema | null {
  let s: AnySchema = schema;
  for (let i = 0; i < 20; i++) {
    const def = s._zod.def as unknown as Record<string, unknown> & { type: string };
    if (def.type === 'array') return def.element as AnySchema;
    if (!['optional', 'nullable', 'default', 'prefault', 'catch', 'readonly', 'nonoptional'].includes(def.type))
      return null;
    s = def.innerType as AnySchema;
  }
  return null;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Keys in `value` that `schema` does not know, each with the closest key it does know. zod drops
 * unknown keys without a word, so a misspelt `pool_sise` would leave the default in force unnoticed.
 */
export function unknownKeys(
  schema: AnySchema,
  value: unknown,
  at: string[] = [],
): Array<{ path: string; suggestion?: string }> {
  const found: Array<{ path: string; suggestion?: string }> = [];
  if (Array.isArray(value)) {
    const element = elementOf(schema);
    if (element)
      (value as unknown[]).forEach((item, i) => found.push(...unknownKeys(element, item, [...at, String(i)])));
    return found;
  }
  const obj = objectShapeOf(schema);
  if (!obj || !isPlainObject(value)) return found;
  const known = Object.keys(obj.shape);
  for (const [k, v] of Object.entries(value)) {
    const child = obj.shape[k];
    if (child) found.push(...unknownKeys(child, v, [...at, k]));
    else if (!obj.open)
      found.push({ path: [...at, k].join('.'), suggestion: known.length ? closest(k, known) : undefined });
  }
  return found;
}

/**
 * Validate one config section. Keys the file has that the schema does not know are an error naming
 * the closest valid key (like a wrong value, they stop the section's owner from starting); values
 * that fail say which environment variable they came from. Unknown keys from the environment are
 * left alone: AGENTD_* names are shared with the tools around the daemon (scripts, the CLI).
 */
export function parseSection<S extends AnySchema>(
  name: string,
  schema: S,
  values: Record<string, unknown>,
): { ok: true; data: z.output<S> } | { ok: false; reason: string } {
  const origin = origins.get(values);
  const unknown = unknownKeys(schema, origin?.file ?? {});
  if (unknown.length > 0) {
    const list = unknown.map((u) => `${u.path}${u.suggestion ? ` (did you mean ${u.suggestion}?)` : ''}`).join(', ');
    return { ok: false, reason: `config section "${name}": unknown key${unknown.length > 1 ? 's' : ''} ${list}` };
  }
  const r = z.safeParse(schema, values);
  if (r.success) return { ok: true, data: r.data };
  const issues = r.error.issues.map((i) => {
    const key = i.path.join('.');
    const fromEnv = origin?.env.get([name, ...i.path.map(String)].join('.'));
    let given: unknown = origin?.file;
    for (const p of i.path)
      given =
        isPlainObject(given) || Array.isArray(given) ? (given as Record<string, unknown>)[p as string] : undefined;
    const source = fromEnv
      ? ` (from ${fromEnv.shown})`
      : given !== undefined && !SECRET_KEY_RE.test(key)
        ? ` (got ${JSON.stringify(given)})`
        : '';
    return `${key}: ${i.message}${source}`;
  });
  return { ok: false, reason: `config section "${name}": ${issues.join('; ')}` };
}

/** Sections of the config file that name neither the kernel nor a plugin found, each with the closest name. */
export function unknownSections(config: Config, plugins: string[]): Array<{ section: string; suggestion: string }> {
  const known = ['daemon', 'router', ...plugins];
  return config.fileSections
    .filter((s) => !known.includes(s))
    .map((s) => ({ section: s, suggestion: closest(s, known) }));
}
