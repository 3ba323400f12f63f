/**
 * The sandbox plugin: run untrusted code in hardened, disposable Docker containers. This file is only
 * the wiring (events, schemas, lifecycle); the work is in service.ts and can run without the kernel.
 */
import path from 'node:path';
import { definePlugin } from '../../daemon/plugin-api.js';
import { sandboxConfigSchema } from './config.js';
import { createSchema, destroySchema, execSchema, listSchema, responses, statusSchema } from './schemas.js';
import { SandboxService } from './service.js';

export default definePlugin({
  name: 'sandbox',
  version: 1,
  namespaces: ['sandbox'],
  description:
    'Runs python, bash, node and R code in hardened, disposable Docker containers (no network, no capabilities, read-only root, resource limits), with a warm pool and long-lived sessions.',
  configSchema: sandboxConfigSchema,
  publishes: {
    'sandbox:output':
      '{exec_id, session_id?, stream: stdout|stderr, chunk}: output of a running exec, coalesced (config output_flush_ms) and capped like the result',
    'sandbox:exec_started': '{exec_id, session_id?, language, image, warm}: an exec got its container and starts',
    'sandbox:exec_finished':
      '{exec_id, session_id?, exit_code, duration_ms, timed_out, oom_killed, truncated, workspace_exceeded?, cancelled?}: an exec ended',
    'sandbox:session_created': '{session_id, image, limits}',
    'sandbox:session_destroyed': '{session_id, reason: requested|idle}',
    'sandbox:engine':
      '{reachable, version, reason}: the Docker engine became reachable or was lost (the plugin is degraded meanwhile)',
  },
  async start(ctx) {
    const sandbox = new SandboxService({
      config: ctx.config,
      log: ctx.log,
      home: ctx.paths.home,
      emit: (event, data) => ctx.emit(event, data),
      setStatus: (status, reason, code) => ctx.setStatus(status, reason, code),
      markDirty: () => ctx.markDirty(),
    });
    // Sessions of the checkpoint (or of the previous incarnation) are adopted by the recovery.
    if (ctx.restored !== undefined) sandbox.restore(ctx.restored);
    // The ping only: recovery (reaping leftovers, reviving sessions, the image check) runs on in the
    // background, and sandbox requests wait for it.
    await sandbox.begin();
    return sandbox;
  },
  // The service stays reachable while it stops: late requests get UNAVAILABLE from it, not a crash;
  // and its snapshot keeps working after, for the final checkpoint.
  stop: (sandbox, _ctx, deadline) => sandbox.stop(deadline),
  snapshot: (sandbox) => sandbox.snapshot(),
  restore: (sandbox, state) => sandbox.restore(state),
  health: (sandbox) => sandbox.health(),
  // Sessions' workspaces roll back with a full checkpoint (the sessions themselves are in the snapshot).
  fullState: { dirs: (_sandbox, ctx) => ({ sessions: path.join(ctx.paths.home, 'sandbox', 'sessions') }) },
  events: {
    'sandbox:exec': {
      summary: 'Run code in a fresh hardened container (or in a session) and return its output',
      description:
        'Returns {exec_id, exit_code, stdout, stderr, duration_ms, timed_out, oom_killed, truncated, stdout_bytes, stderr_bytes}. ' +
        'Output is streamed as sandbox:output while it runs and capped per stream (config output_cap_bytes; truncated=true past it). ' +
        'At timeout_s the container is killed through the Docker API (timed_out=true, exit_code null). ' +
        'A one-shot exec uses a warm container of the default image (its interpreter already waiting) when one is ready and destroys it afterwards. ' +
        'In a session the answer also has workspace_exceeded: the workspace went past limits.session_workspace_mb (a running exec is then killed).',
      schema: execSchema,
      emits: ['sandbox:exec_started', 'sandbox:output', 'sandbox:exec_finished'],
      errors: ['UNAVAILABLE', 'NOT_FOUND', 'INVALID_DATA', 'OVERLOADED', 'CANCELLED'],
      // An exec may legitimately run for minutes; the client's timeout_ms still bounds it.
      defaultTimeoutMs: 120_000,
      response: responses.exec,
      handler: (data, sandbox, call) => sandbox.exec(data, call),
    },
    'sandbox:create': {
      summary: 'Create a long-lived session whose /workspace persists across execs',
      description:
        'Returns the session ({session_id, image, limits, created_at, last_used_at, idle_expires_at, execs, busy, container_id}). Run code in it with sandbox:exec {session_id}. Idle sessions are destroyed after idle_timeout_s.',
      schema: createSchema,
      emits: ['sandbox:session_created'],
      errors: ['UNAVAILABLE', 'NOT_FOUND', 'INVALID_DATA', 'CONFLICT', 'OVERLOADED'],
      defaultTimeoutMs: 60_000,
      response: responses.create,
      handler: (data, sandbox) => sandbox.createSession(data),
    },
    'sandbox:destroy': {
      summary: 'Destroy a session: kill its container and delete its workspace',
      schema: destroySchema,
      emits: ['sandbox:session_destroyed'],
      errors: ['NOT_FOUND', 'UNAVAILABLE'],
      response: responses.destroy,
      handler: (data, sandbox) => sandbox.destroySession(data.session_id),
    },
    'sandbox:list': {
      summary: 'List live sessions',
      description:
        'Returns {sessions: [{session_id, image, limits, created_at, last_used_at, idle_expires_at, execs, busy, container_id}]}.',
      schema: listSchema,
      response: responses.list,
      async handler(_d, sandbox) {
        await sandbox.recovered(); // sessions restored from a checkpoint are adopted by the recovery
        return sandbox.listSessions();
      },
    },
    'sandbox:status': {
      summary: 'Engine reachability and version, image presence, warm pool, running execs, sessions',
      description:
        'Answers even when Docker is unreachable (engine.reachable=false with the reason), so it is the place to find out why sandbox:* answers UNAVAILABLE.',
      schema: statusSchema,
      response: responses.status,
      handler: (_d, sandbox) => sandbox.status(),
    },
  },
});
