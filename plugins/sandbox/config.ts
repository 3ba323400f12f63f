/**
 * The `sandbox:` section of agentd.yaml. Every key has a default so an empty section works; the
 * kernel maps env overrides (AGENTD_SANDBOX_POOL_SIZE=2, AGENTD_SANDBOX_LIMITS__MAX_MEMORY_MB=…) onto it.
 */
import os from 'node:os';
import { z } from 'zod';
import { LANGUAGE_NAMES } from './languages.js';
import { imageReference } from './schemas.js';

// Env overrides arrive as strings; coerce so `AGENTD_SANDBOX_POOL_SIZE=2` parses.
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const num = (min: number, max: number) => z.coerce.number().min(min).max(max);

export const limitsConfigSchema = z.object({
  timeout_s: num(0.1, 86_400)
    .default(30)
    .register(z.globalRegistry, { description: 'Default exec timeout in seconds' }),
  memory_mb: int(8, 1_048_576).default(512).register(z.globalRegistry, {
    description: 'Default memory limit per container (MiB); swap is set equal, so no swap',
  }),
  cpus: num(0.01, 1024)
    .default(1)
    .register(z.globalRegistry, { description: 'Default CPU quota per container (cores)' }),
  pids: int(8, 1_000_000)
    .default(128)
    .register(z.globalRegistry, { description: 'Maximum processes per container (contains fork bombs)' }),
  max_timeout_s: num(1, 86_400)
    .default(600)
    .register(z.globalRegistry, { description: 'Largest timeout_s a request may ask for' }),
  max_memory_mb: int(16, 1_048_576)
    .default(4096)
    .register(z.globalRegistry, { description: 'Largest memory_mb a request may ask for' }),
  // The engine refuses more CPUs than the host has, so the default never offers more.
  max_cpus: num(0.01, 1024).default(Math.min(2, os.availableParallelism())).register(z.globalRegistry, {
    description: 'Largest cpus a request may ask for (default: 2, or fewer if the host has fewer)',
  }),
  workspace_mb: int(1, 65_536)
    .default(64)
    .register(z.globalRegistry, { description: 'Size of the writable /workspace tmpfs of one-shot execs (MiB)' }),
  session_workspace_mb: int(1, 1_048_576).default(256).register(z.globalRegistry, {
    description:
      'Disk a session workspace may use on the host (MiB): measured while its execs run; an exec that goes past it is killed',
  }),
  tmp_mb: int(1, 65_536).default(16).register(z.globalRegistry, { description: 'Size of the noexec /tmp tmpfs (MiB)' }),
  shm_mb: int(1, 65_536).default(16).register(z.globalRegistry, {
    description: 'Size of the noexec /dev/shm tmpfs (MiB); counts against the memory limit',
  }),
  nofile: int(16, 1_048_576)
    .default(1024)
    .register(z.globalRegistry, { description: 'Open-file ulimit inside the container' }),
  fsize_mb: int(1, 1_048_576)
    .default(256)
    .register(z.globalRegistry, { description: 'Largest file a process may write (MiB, ulimit fsize)' }),
});

export const sandboxConfigSchema = z.object({
  image: imageReference.default('agentd-sandbox:latest').register(z.globalRegistry, {
    description: 'Default image (build it with scripts/sandbox-image.sh build, or name any image you have)',
  }),
  docker_socket: z
    .string()
    .optional()
    .register(z.globalRegistry, { description: 'Docker socket path; default DOCKER_HOST or /var/run/docker.sock' }),
  user: z
    .string()
    .regex(/^\d+:\d+$/, 'numeric uid:gid')
    .refine((u) => !u.split(':').includes('0'), 'the sandbox never runs code as root (uid or gid 0)')
    .default('1000:1000')
    .register(z.globalRegistry, { description: 'uid:gid code runs as (numeric, never 0)' }),
  pool_size: int(0, 64).default(2).register(z.globalRegistry, {
    description:
      'Warm containers of the default image per language in pool_languages, each with its interpreter started and waiting',
  }),
  pool_languages: z
    .preprocess(
      (v) =>
        typeof v === 'string'
          ? v
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : v,
      z.array(z.enum(LANGUAGE_NAMES)),
    )
    .default([...LANGUAGE_NAMES])
    .register(z.globalRegistry, {
      description: 'Languages that get warm containers (env: comma-separated); others start a container per exec',
    }),
  max_concurrent: int(1, 256)
    .default(16)
    .register(z.globalRegistry, { description: 'Execs running at once; more wait in a queue' }),
  max_queue: int(0, 10_000)
    .default(256)
    .register(z.globalRegistry, { description: 'Execs waiting for a slot before new ones answer OVERLOADED' }),
  output_cap_bytes: int(1024, 256 * 1024 * 1024)
    .default(1024 * 1024)
    .register(z.globalRegistry, {
      description: 'Bytes kept per stream (stdout, stderr); beyond it output is dropped and truncated=true',
    }),
  output_flush_ms: int(1, 10_000)
    .default(50)
    .register(z.globalRegistry, { description: 'Coalescing window for sandbox:output events' }),
  output_chunk_bytes: int(256, 1024 * 1024)
    .default(16 * 1024)
    .register(z.globalRegistry, { description: 'Largest sandbox:output chunk' }),
  session_idle_s: num(1, 7 * 86_400)
    .default(900)
    .register(z.globalRegistry, { description: 'Sessions unused this long are destroyed' }),
  max_sessions: int(0, 1000).default(32).register(z.globalRegistry, { description: 'Live sessions at most' }),
  probe_min_ms: int(50, 600_000).default(500).register(z.globalRegistry, {
    description: 'First retry delay while Docker is unreachable (doubles up to probe_max_ms)',
  }),
  probe_max_ms: int(100, 600_000)
    .default(10_000)
    .register(z.globalRegistry, { description: 'Longest retry delay while Docker is unreachable' }),
  health_interval_ms: int(100, 600_000)
    .default(5_000)
    .register(z.globalRegistry, { description: 'Ping interval while Docker is reachable' }),
  engine_timeout_ms: int(100, 3_600_000).default(15_000).register(z.globalRegistry, {
    description:
      'An engine call unanswered this long means the engine hangs: the sandbox reports it unreachable and fails what waits on it',
  }),
  limits: limitsConfigSchema.default(limitsConfigSchema.parse({})),
});

export type SandboxConfig = z.output<typeof sandboxConfigSchema>;
export type LimitsConfig = z.output<typeof limitsConfigSchema>;

/** Parse a raw section (tests and the standalone service use this; the kernel parses via configSchema). */
export function parseConfig(raw: unknown): SandboxConfig {
  return sandboxConfigSchema.parse(raw ?? {});
}
