/**
 * The `mcp:` section of agentd.yaml: the MCP servers agents may use (stdio commands or Streamable
 * HTTP URLs) and the daemon events `daemon-control mcp` exposes as MCP tools.
 */
import { closest } from 'fastest-levenshtein';
import { z } from 'zod';

/** A server name: no `__`, which separates server and tool in the names the model sees. */
export const SERVER_NAME_RE = /^[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*$/;

/** An `mcp.expose` entry: a namespace (`kg`), an event (`sandbox:exec`) or `ns:*`. */
export const EXPOSE_RE = /^[a-z][a-z0-9_]*(?::(?:[a-z][a-z0-9_]*|\*))*$/;

/** DESIGN.md's safe default: agents, workflows, running code, the graph, spend, one model call. */
export const DEFAULT_EXPOSE = ['agent', 'workflow', 'sandbox:exec', 'kg', 'budget:status', 'completion:request'];

const STDIO_KEYS = ['command', 'args', 'env', 'cwd'];
const HTTP_KEYS = ['url', 'headers'];
const COMMON_KEYS = ['timeout_ms', 'start_timeout_ms'];
const ALL_KEYS = [...STDIO_KEYS, ...HTTP_KEYS, ...COMMON_KEYS];

const stringMap = z.record(z.string(), z.string());

/** One server: `{command, args?, env?, cwd?}` (stdio) or `{url, headers?}` (Streamable HTTP). */
export const serverSchema = z
  .looseObject({
    command: z
      .string()
      .min(1)
      .optional()
      .register(z.globalRegistry, { description: 'Executable of a stdio server (found on PATH)' }),
    args: z.array(z.string()).default([]).register(z.globalRegistry, { description: 'Its arguments' }),
    env: stringMap.default({}).register(z.globalRegistry, {
      description:
        'Extra environment (on top of HOME, PATH, SHELL, TERM, USER, LOGNAME); "${NAME}" takes the daemon\'s variable',
    }),
    cwd: z
      .string()
      .min(1)
      .optional()
      .register(z.globalRegistry, { description: "Working directory (default: the daemon's)" }),
    url: z.string().optional().register(z.globalRegistry, { description: 'Endpoint of a Streamable HTTP server' }),
    headers: stringMap.default({}).register(z.globalRegistry, {
      description: 'HTTP headers sent with every request; "${NAME}" takes the daemon\'s variable',
    }),
    timeout_ms: z
      .number()
      .int()
      .min(100)
      .max(86_400_000)
      .optional()
      .register(z.globalRegistry, { description: 'Longest wait for one tool call (default mcp.call_timeout_ms)' }),
    start_timeout_ms: z.number().int().min(100).max(600_000).optional().register(z.globalRegistry, {
      description: 'Longest wait for the server to start and answer initialize (default mcp.start_timeout_ms)',
    }),
  })
  .superRefine((v, ctx) => {
    for (const k of Object.keys(v)) {
      if (!ALL_KEYS.includes(k))
        ctx.addIssue({
          code: 'custom',
          path: [k],
          message: `unknown key "${k}" (did you mean ${closest(k, ALL_KEYS)}?)`,
        });
    }
    const hasCommand = v.command !== undefined;
    const hasUrl = v.url !== undefined;
    if (hasCommand === hasUrl) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: hasCommand
          ? 'give command (a stdio server) or url (Streamable HTTP), not both'
          : 'give command (a stdio server) or url (Streamable HTTP)',
      });
      return;
    }
    if (hasUrl) {
      let u: URL | null = null;
      try {
        u = new URL(v.url!);
      } catch {
        /* reported below */
      }
      if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:'))
        ctx.addIssue({ code: 'custom', path: ['url'], message: `not an http(s) URL: ${JSON.stringify(v.url)}` });
      for (const k of STDIO_KEYS)
        if (k in v && k !== 'args' && k !== 'env')
          ctx.addIssue({ code: 'custom', path: [k], message: `${k} is for stdio servers; this one has a url` });
      if (v.args.length || Object.keys(v.env).length)
        ctx.addIssue({
          code: 'custom',
          path: [v.args.length ? 'args' : 'env'],
          message: 'args and env are for stdio servers; this one has a url',
        });
    } else if (Object.keys(v.headers).length) {
      ctx.addIssue({
        code: 'custom',
        path: ['headers'],
        message: 'headers are for HTTP servers; this one has a command',
      });
    }
  });
export type ServerConfig = z.output<typeof serverSchema>;

const ms = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const configSchema = z.object({
  servers: z
    .record(z.string(), serverSchema)
    .superRefine((m, ctx) => {
      for (const name of Object.keys(m)) {
        if (!SERVER_NAME_RE.test(name))
          ctx.addIssue({
            code: 'custom',
            path: [name],
            message: `"${name}" is not a server name: letters, digits, - and single _ (no "__": the model sees <server>__<tool>)`,
          });
      }
    })
    .default({})
    .register(z.globalRegistry, {
      description:
        'MCP servers agents may use, by name: {command, args?, env?, cwd?} or {url, headers?}; started on demand',
    }),
  expose: z
    .array(z.string().regex(EXPOSE_RE, 'a namespace ("kg"), an event ("sandbox:exec") or "ns:*"'))
    .default(DEFAULT_EXPOSE)
    .register(z.globalRegistry, {
      description:
        'Daemon events daemon-control mcp offers as MCP tools: namespaces, events or ns:*; system:shutdown and plugin:reload only when named exactly',
    }),
  call_timeout_ms: ms(100, 86_400_000).default(60_000).register(z.globalRegistry, {
    description: "Longest wait for one tool call of a server (never more than the caller's deadline)",
  }),
  start_timeout_ms: ms(100, 600_000)
    .default(20_000)
    .register(z.globalRegistry, { description: 'Longest wait for a server to start and answer initialize' }),
  restart_initial_ms: ms(10, 600_000).default(500).register(z.globalRegistry, {
    description: 'First delay before restarting a server that exited; doubles with each failure in a row',
  }),
  restart_max_ms: ms(10, 3_600_000)
    .default(30_000)
    .register(z.globalRegistry, { description: 'Longest delay between restarts' }),
  stable_ms: ms(0, 3_600_000).default(30_000).register(z.globalRegistry, {
    description: 'A server up this long before exiting restarts from the first delay again',
  }),
});
export type McpConfig = z.output<typeof configSchema>;
