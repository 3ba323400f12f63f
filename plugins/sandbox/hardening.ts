/**
 * The container spec every sandbox container gets. One pure function so the hardening is reviewed in
 * one place and unit-tested field by field; runtime behaviour is tested separately against Docker.
 */
import type Docker from 'dockerode';
import type { SandboxConfig } from './config.js';
import type { Language } from './languages.js';
import { zygoteCmd } from './zygote.js';

export const LABEL = 'org.agentd.sandbox';
/** Which daemon (by home dir) owns the container, so daemons side by side never reap each other's. */
export const LABEL_OWNER = 'org.agentd.sandbox.owner';
export const LABEL_KIND = 'org.agentd.sandbox.kind';
export const LABEL_SESSION = 'org.agentd.sandbox.session';
/** host/pid/start-time of the daemon process that made it: lets any daemon reap a dead one's leftovers. */
export const LABEL_PROCESS = 'org.agentd.sandbox.process';

export interface Limits {
  memory_mb: number;
  cpus: number;
  pids: number;
}

export interface ContainerSpecInput {
  image: string;
  owner: string;
  /** Value of LABEL_PROCESS, when known. */
  process?: string;
  kind: 'pool' | 'exec' | 'session';
  limits: Limits;
  config: SandboxConfig;
  sessionId?: string;
  /** Host directory bind-mounted at /workspace (sessions); otherwise /workspace is a tmpfs. */
  workspaceDir?: string;
  /**
   * A one-shot container whose main process waits for one exec in this language on its stdin
   * (zygote.ts); without it the main process idles and execs go through `docker exec`.
   */
  zygote?: { language: Language; nonce: string };
  name?: string;
}

/** The idle main process: the container just waits for execs. `sleep` exists in every base image. */
const IDLE_CMD = ['sleep', '2147483647'];

export function resourceLimits(l: Limits): Pick<Docker.HostConfig, 'Memory' | 'MemorySwap' | 'NanoCpus' | 'PidsLimit'> {
  const bytes = l.memory_mb * 1024 * 1024;
  // MemorySwap equal to Memory: the limit is a hard RAM limit, no swapping past it.
  return { Memory: bytes, MemorySwap: bytes, NanoCpus: Math.round(l.cpus * 1e9), PidsLimit: l.pids };
}

export function containerSpec(input: ContainerSpecInput): Docker.ContainerCreateOptions {
  const { config, limits } = input;
  const lc = config.limits;
  const [uid, gid] = config.user.split(':');
  const tmpfs: Record<string, string> = {
    // Scratch space: small, noexec, so nothing dropped there can be run as a binary.
    '/tmp': `rw,noexec,nosuid,nodev,size=${lc.tmp_mb}m,mode=1777`,
  };
  const mounts: Docker.MountConfig = [];
  if (input.workspaceDir) {
    mounts.push({ Type: 'bind', Source: input.workspaceDir, Target: '/workspace', ReadOnly: false });
  } else {
    // `exec` explicitly: Docker's tmpfs default is noexec, and the workspace should behave like the
    // bind-mounted one of a session (scripts in it can be run); /tmp stays noexec.
    tmpfs['/workspace'] = `rw,exec,nosuid,nodev,size=${lc.workspace_mb}m,uid=${uid},gid=${gid ?? uid},mode=0755`;
  }
  const labels: Record<string, string> = { [LABEL]: '1', [LABEL_OWNER]: input.owner, [LABEL_KIND]: input.kind };
  if (input.sessionId) labels[LABEL_SESSION] = input.sessionId;
  if (input.process) labels[LABEL_PROCESS] = input.process;
  const fsize = lc.fsize_mb * 1024 * 1024;
  const z = input.zygote;
  return {
    name: input.name,
    Image: input.image,
    Cmd: z ? zygoteCmd(z.language, z.nonce) : IDLE_CMD,
    Entrypoint: [],
    User: config.user,
    WorkingDir: '/workspace',
    Env: [
      'HOME=/workspace',
      'LANG=C.UTF-8',
      'PYTHONDONTWRITEBYTECODE=1',
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    ],
    Hostname: 'sandbox',
    Labels: labels,
    NetworkDisabled: true,
    // A zygote's stdio is the exec's: attached before the start, stdin closed when the daemon ends it.
    AttachStdin: !!z,
    AttachStdout: !!z,
    AttachStderr: !!z,
    OpenStdin: !!z,
    StdinOnce: !!z,
    Tty: false,
    HostConfig: {
      ...resourceLimits(limits),
      NetworkMode: 'none',
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges:true'],
      Privileged: false,
      ReadonlyRootfs: true,
      Tmpfs: tmpfs,
      Mounts: mounts,
      Init: true,
      IpcMode: 'private',
      // Docker's default /dev/shm is a writable 64 MiB tmpfs (noexec, nosuid, nodev); sized like /tmp.
      ShmSize: lc.shm_mb * 1024 * 1024,
      // Under host memory pressure the kernel should kill sandboxed code before the daemon.
      OomScoreAdj: 500,
      // No nproc ulimit: RLIMIT_NPROC counts a uid's processes across every container on the host;
      // PidsLimit is the per-container bound.
      Ulimits: [
        { Name: 'nofile', Soft: lc.nofile, Hard: lc.nofile },
        { Name: 'core', Soft: 0, Hard: 0 },
        { Name: 'fsize', Soft: fsize, Hard: fsize },
      ],
      // Output goes through the attached or exec streams; nothing is worth keeping in the engine's logs.
      LogConfig: { Type: 'none', Config: {} },
      AutoRemove: false,
      RestartPolicy: { Name: 'no' },
    },
  };
}
