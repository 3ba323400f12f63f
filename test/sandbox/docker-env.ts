/**
 * Shared setup for the sandbox tests: is a Docker engine (and the default image) there? Locally a
 * missing engine skips the Docker tests with a one-line reason; in CI (CI=true) it fails them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import pino from 'pino';
import { describe, it } from 'vitest';
import { IN_CI } from '../helpers/daemon-process.js';
import { parseConfig, type SandboxConfig } from '../../plugins/sandbox/config.js';
import { SandboxService, type Emit } from '../../plugins/sandbox/service.js';

export const IMAGE = process.env.AGENTD_SANDBOX_IMAGE ?? 'agentd-sandbox:latest';

async function unavailableReason(): Promise<string | null> {
  const docker = new Docker();
  try {
    await Promise.race([docker.ping(), new Promise((_, r) => setTimeout(() => r(new Error('ping timed out')), 3000))]);
  } catch (err) {
    return `no Docker engine reachable (${(err as Error).message}); start one with scripts/dockerd.sh start`;
  }
  try {
    await docker.getImage(IMAGE).inspect();
  } catch {
    return `image ${IMAGE} missing; build it with scripts/sandbox-image.sh build`;
  }
  return null;
}

export const dockerReason = await unavailableReason();

/**
 * `describe` for tests that need Docker: runs them when it is there; otherwise skips with the reason
 * (locally) or registers one failing test (CI), so CI can never pass without really running them.
 */
export function describeDocker(name: string, fn: () => void): void {
  if (!dockerReason) {
    describe(name, fn);
  } else if (IN_CI) {
    describe(name, () => {
      it('needs a Docker engine (CI=true: missing engine is a failure)', () => {
        throw new Error(dockerReason!);
      });
    });
  } else {
    console.warn(`[skip] ${name}: ${dockerReason}`);
    describe.skip(name, fn);
  }
}

export const silentLog = pino({ level: process.env.SANDBOX_TEST_LOG ?? 'silent' });

export interface TestService {
  svc: SandboxService;
  events: Array<{ event: string; data: Record<string, unknown> }>;
  statuses: Array<{ status: string; reason?: string; code?: string }>;
  home: string;
  config: SandboxConfig;
}

export function tempHome(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-sbx-'));
}

/** A started service on its own home (own owner label), collecting events and status changes. */
export async function startService(raw: Record<string, unknown> = {}, home = tempHome()): Promise<TestService> {
  const events: TestService['events'] = [];
  const statuses: TestService['statuses'] = [];
  const config = parseConfig({ image: IMAGE, pool_size: 0, ...raw });
  const emit: Emit = (event, data) => events.push({ event, data });
  const svc = new SandboxService({
    config,
    log: silentLog,
    home,
    emit,
    setStatus: (status, reason, code) => statuses.push({ status, reason, code }),
  });
  await svc.start();
  return { svc, events, statuses, home, config };
}

/** Containers carrying this owner label (should be none after stop). */
export async function ownedContainers(owner: string): Promise<Docker.ContainerInfo[]> {
  return new Docker().listContainers({ all: true, filters: { label: [`org.agentd.sandbox.owner=${owner}`] } });
}
