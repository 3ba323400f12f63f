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
const image = z.string().min(1).max(255);
const IMAGE_DOC = 'Docker image to run in; must already be present (the sandbox never pulls). Default: config `image`';

export const limitsSchema = z.object({
  memory_mb: z.number().int().min(16).max(1_048_576).optional().describe('Memory limit in MiB (swap is set equal: no swap)'),
  cpus: z.number().min(0.01).max(1024).optional().describe('CPU quota in cores, e.g. 0.5'),
  pids: z.number().int().min(8).max(100_000).optional().describe('Maximum number of processes'),
});

export const fileSchema = z.object({
  path: z.string().min(1).max(255).describe('Path relative to /workspace, e.g. "data/input.csv"; no "..", not absolute'),
  content: z.string().describe('File content (UTF-8 text, or base64 when encoding is "base64")'),
  encoding: z.enum(['utf8', 'base64']).optional().describe('Encoding of content (default utf8)'),
  executable: z.boolean().optional().describe('Give the file mode 0755'),
});

export const execSchema = z.object({
  language: z.enum(LANGUAGE_NAMES).describe('Interpreter: python (python3), bash, node or r (Rscript)'),
  code: z
    .string()
    .max(1_000_000)
    .refine((s) => s.trim().length > 0, 'code is empty')
    .describe('Source code to run; written to a file and run by the interpreter, cwd /workspace'),
  timeout_s: z.number().positive().max(86_400).optional().describe('Wall-clock limit in seconds; the container is killed at the deadline (default config limits.timeout_s)'),
  memory_mb: z.number().int().min(16).max(1_048_576).optional().describe('Memory limit in MiB (default config limits.memory_mb)'),
  cpus: z.number().min(0.01).max(1024).optional().describe('CPU quota in cores (default config limits.cpus)'),
  files: z.array(fileSchema).max(1000).optional().describe('Files written into /workspace before the code runs: [{path (relative, no ".."), content, encoding?: "utf8"|"base64", executable?}]'),
  env: z
    .record(z.string().regex(ENV_NAME, 'not a valid environment variable name'), z.string().max(65_536))
    .refine((e) => !Object.keys(e).some((k) => k.startsWith('AGENTD_')), 'names starting with AGENTD_ are reserved')
    .optional()
    .describe('Extra environment variables for the process: {NAME: "value"} (names starting with AGENTD_ are reserved)'),
  stdin: z.string().max(10_000_000).optional().describe('Text fed to the process on standard input (then closed)'),
  session_id: sessionId.optional().describe('Run in this session (sandbox:create): its workspace persists between execs'),
  image: image.optional().describe(IMAGE_DOC),
});

export const createSchema = z.object({
  session_id: sessionId.optional().describe('Your own id for the session; generated when absent'),
  image: image.optional().describe(IMAGE_DOC),
  limits: limitsSchema.optional().describe('Limits of the session container: {memory_mb?, cpus?, pids?} (defaults from config limits)'),
  idle_timeout_s: z.number().positive().max(7 * 86_400).optional().describe('Destroy the session after this long unused (default config session_idle_s)'),
});

export const destroySchema = z.object({
  session_id: sessionId.describe('The session to destroy (its container and workspace are removed)'),
});

export const listSchema = z.object({});
export const statusSchema = z.object({});

export type ExecInput = z.output<typeof execSchema>;
export type CreateInput = z.output<typeof createSchema>;
export type LimitsInput = z.output<typeof limitsSchema>;
