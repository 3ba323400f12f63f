/**
 * Request schemas of the sandbox events. Every field has a description: the catalog and
 * system:discover are generated from them. Hard bounds live here; the configured maxima
 * (limits.max_*) are checked by the service, with the same INVALID_DATA shape.
 */
import { z } from 'zod';
import { LANGUAGE_NAMES } from './languages.js';

export const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const sessionId = z.string().regex(SESSION_ID, 'letters, digits, _ . - (at most 64, starting with a letter or digit)');
/**
 * Docker's reference grammar (distribution/reference): [registry[:port]/]path[:tag][@digest], path
 * components lowercase alphanumerics joined by `.`, `_`, `__` or dashes. Checked here so a malformed
 * name is the caller's INVALID_DATA, not an engine error.
 */
const DOMAIN = String.raw`(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?`;
const COMPONENT = String.raw`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`;
export const IMAGE_REFERENCE = new RegExp(
  String.raw`^(?:${DOMAIN}/)?${COMPONENT}(?:/${COMPONENT})*(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$`,
);
export const imageReference = z
  .string()
  .min(1)
  .max(255)
  .regex(
    IMAGE_REFERENCE,
    'not a valid image reference (e.g. python:3.12-slim, registry.example:5000/team/img@sha256:…)',
  );
const image = imageReference;
const IMAGE_DOC = 'Docker image to run in; must already be present (the sandbox never pulls). Default: config `image`';

export const limitsSchema = z.object({
  memory_mb: z
    .number()
    .int()
    .min(16)
    .max(1_048_576)
    .optional()
    .register(z.globalRegistry, { description: 'Memory limit in MiB (swap is set equal: no swap)' }),
  cpus: z
    .number()
    .min(0.01)
    .max(1024)
    .optional()
    .register(z.globalRegistry, { description: 'CPU quota in cores, e.g. 0.5' }),
  pids: z
    .number()
    .int()
    .min(8)
    .max(100_000)
    .optional()
    .register(z.globalRegistry, { description: 'Maximum number of processes' }),
});

export const fileSchema = z.object({
  path: z.string().min(1).max(255).register(z.globalRegistry, {
    description: 'Path relative to /workspace, e.g. "data/input.csv"; no "..", not absolute',
  }),
  content: z
    .string()
    .register(z.globalRegistry, { description: 'File content (UTF-8 text, or base64 when encoding is "base64")' }),
  encoding: z
    .enum(['utf8', 'base64'])
    .optional()
    .register(z.globalRegistry, { description: 'Encoding of content (default utf8)' }),
  executable: z.boolean().optional().register(z.globalRegistry, { description: 'Give the file mode 0755' }),
});

export const execSchema = z.object({
  language: z
    .enum(LANGUAGE_NAMES)
    .register(z.globalRegistry, { description: 'Interpreter: python (python3), bash, node or r (Rscript)' }),
  code: z
    .string()
    .max(1_000_000)
    .refine((s) => s.trim().length > 0, 'code is empty')
    .register(z.globalRegistry, {
      description: 'Source code to run; written to a file and run by the interpreter, cwd /workspace',
    }),
  timeout_s: z.number().positive().max(86_400).optional().register(z.globalRegistry, {
    description:
      'Wall-clock limit in seconds; the container is killed at the deadline (default config limits.timeout_s)',
  }),
  memory_mb: z
    .number()
    .int()
    .min(16)
    .max(1_048_576)
    .optional()
    .register(z.globalRegistry, { description: 'Memory limit in MiB (default config limits.memory_mb)' }),
  cpus: z
    .number()
    .min(0.01)
    .max(1024)
    .optional()
    .register(z.globalRegistry, { description: 'CPU quota in cores (default config limits.cpus)' }),
  files: z.array(fileSchema).max(1000).optional().register(z.globalRegistry, {
    description:
      'Files written into /workspace before the code runs: [{path (relative, no ".."), content, encoding?: "utf8"|"base64", executable?}]',
  }),
  env: z
    .record(
      z.string().regex(ENV_NAME, 'not a valid environment variable name'),
      z
        .string()
        .max(65_536)
        .refine((v) => !v.includes('\0'), 'contains a NUL byte'),
    )
    .refine((e) => !Object.keys(e).some((k) => k.startsWith('AGENTD_')), 'names starting with AGENTD_ are reserved')
    .optional()
    .register(z.globalRegistry, {
      description:
        'Extra environment variables for the process: {NAME: "value"} (names starting with AGENTD_ are reserved)',
    }),
  stdin: z
    .string()
    .max(10_000_000)
    .optional()
    .register(z.globalRegistry, { description: 'Text fed to the process on standard input (then closed)' }),
  session_id: sessionId.optional().register(z.globalRegistry, {
    description: 'Run in this session (sandbox:create): its workspace persists between execs',
  }),
  image: image.optional().register(z.globalRegistry, { description: IMAGE_DOC }),
});

export const createSchema = z.object({
  session_id: sessionId
    .optional()
    .register(z.globalRegistry, { description: 'Your own id for the session; generated when absent' }),
  image: image.optional().register(z.globalRegistry, { description: IMAGE_DOC }),
  limits: limitsSchema.optional().register(z.globalRegistry, {
    description: 'Limits of the session container: {memory_mb?, cpus?, pids?} (defaults from config limits)',
  }),
  idle_timeout_s: z
    .number()
    .positive()
    .max(7 * 86_400)
    .optional()
    .register(z.globalRegistry, {
      description: 'Destroy the session after this long unused (default config session_idle_s)',
    }),
});

export const destroySchema = z.object({
  session_id: sessionId.describe('The session to destroy (its container and workspace are removed)'),
});

export const listSchema = z.object({});
export const statusSchema = z.object({});

export type ExecInput = z.output<typeof execSchema>;
export type CreateInput = z.output<typeof createSchema>;
export type LimitsInput = z.output<typeof limitsSchema>;

// Answers. Loose objects: fields may be added, never removed or retyped.
const sessionOut = z.looseObject({
  session_id: z.string(),
  image: z.string(),
  execs: z.number().int(),
  busy: z.boolean(),
});
export const responses = {
  exec: z.looseObject({
    exec_id: z.string(),
    exit_code: z.number().int().nullable(),
    stdout: z.string(),
    stderr: z.string(),
    duration_ms: z.number(),
    timed_out: z.boolean(),
    oom_killed: z.boolean(),
    truncated: z.boolean(),
  }),
  create: sessionOut,
  destroy: z.looseObject({ session_id: z.string(), destroyed: z.literal(true) }),
  list: z.looseObject({ sessions: z.array(sessionOut) }),
  status: z.looseObject({ engine: z.looseObject({ reachable: z.boolean() }), status: z.enum(['ok', 'degraded']) }),
};
