/** Long-lived sessions: a persistent workspace, serialised execs, idle reaping, restore after restart. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { SandboxService } from '../../plugins/sandbox/service.js';
import { describeDocker, ownedContainers, silentLog, startService, type TestService } from './docker-env.js';

describeDocker('sandbox sessions', () => {
  let t: TestService;

  beforeAll(async () => {
    t = await startService({});
  }, 30_000);

  afterAll(async () => {
    await t?.svc.stop(Date.now() + 10_000);
    if (t) expect(await ownedContainers(t.svc.owner)).toEqual([]);
  }, 30_000);

  it('keeps files across execs and across a timeout kill', async () => {
    const s = await t.svc.createSession({ session_id: 'keep', limits: { memory_mb: 128 } });
    expect(s).toMatchObject({ session_id: 'keep', limits: { memory_mb: 128 }, execs: 0, busy: false });
    await t.svc.exec({
      language: 'python',
      session_id: 'keep',
      code: 'open("state.txt","w").write("one")',
      files: [{ path: 'in/data.csv', content: 'a,b\n1,2\n' }],
    });
    const killed = await t.svc.exec({
      language: 'bash',
      session_id: 'keep',
      code: 'echo more >> state.txt; sleep 60',
      timeout_s: 1,
    });
    expect(killed.timed_out).toBe(true);
    const r = await t.svc.exec({
      language: 'bash',
      session_id: 'keep',
      code: 'cat state.txt; echo; cat in/data.csv; pgrep sleep || echo no-sleep',
    });
    expect(r.stdout).toBe('onemore\n\na,b\n1,2\nno-sleep\n');
    expect(t.svc.listSessions().sessions.find((x) => x.session_id === 'keep')?.execs).toBe(3);
    // Code files do not pile up in the session's small /tmp (only this exec's own is there).
    const tmp = await t.svc.exec({ language: 'bash', session_id: 'keep', code: 'ls -A /tmp | wc -l' });
    expect(tmp.stdout.trim()).toBe('1');
    await t.svc.destroySession('keep');
  }, 40_000);

  it('survives code that kills every process in the container', async () => {
    await t.svc.createSession({ session_id: 'killer' });
    await t.svc.exec({ language: 'bash', session_id: 'killer', code: 'echo kept > f; kill -9 -1' });
    const r = await t.svc.exec({ language: 'bash', session_id: 'killer', code: 'cat f' });
    expect(r.stdout).toBe('kept\n');
    await t.svc.destroySession('killer');
  }, 30_000);

  it('runs one exec at a time per session, in order', async () => {
    await t.svc.createSession({ session_id: 'serial' });
    const rs = await Promise.all(
      [0, 1, 2].map((i) =>
        t.svc.exec({
          language: 'bash',
          session_id: 'serial',
          code: `echo ${i} >> order; sleep 0.2; cat order | wc -l`,
        }),
      ),
    );
    expect(rs.map((r) => r.stdout.trim())).toEqual(['1', '2', '3']);
    await t.svc.destroySession('serial');
  }, 30_000);

  it('lists sessions, answers NOT_FOUND and CONFLICT, and destroy removes container and workspace', async () => {
    const s = await t.svc.createSession({});
    expect(s.session_id).toMatch(/^s-/);
    await expect(t.svc.createSession({ session_id: s.session_id })).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(t.svc.listSessions().sessions.map((x) => x.session_id)).toContain(s.session_id);
    const dir = path.join(t.home, 'sandbox', 'sessions', s.session_id);
    expect(fs.existsSync(dir)).toBe(true);
    await t.svc.destroySession(s.session_id);
    expect(fs.existsSync(dir)).toBe(false);
    expect((await ownedContainers(t.svc.owner)).map((c) => c.Id)).not.toContain(s.container_id);
    await expect(t.svc.destroySession(s.session_id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(t.svc.createSession({ limits: { memory_mb: 1_000_000 } })).rejects.toMatchObject({
      code: 'INVALID_DATA',
      details: { issues: [{ path: ['limits', 'memory_mb'] }] },
    });
    await expect(t.svc.exec({ language: 'bash', code: 'true', session_id: 'nope' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(
      t.events.some(
        (e) =>
          e.event === 'sandbox:session_destroyed' &&
          e.data.session_id === s.session_id &&
          e.data.reason === 'requested',
      ),
    ).toBe(true);
  }, 30_000);

  it('caps the workspace on the host disk: an exec going past session_workspace_mb is killed, and flagged', async () => {
    // A second service with a small cap, on its own home.
    const capped = await startService({ limits: { session_workspace_mb: 8 } });
    try {
      await capped.svc.createSession({ session_id: 'capped' });
      const run = (code: string) => capped.svc.exec({ language: 'bash', session_id: 'capped', code, timeout_s: 30 });
      // Writing on and on: killed at the first measurement past the cap, long before the timeout.
      const t0 = Date.now();
      const slow = await run('for i in $(seq 1 300); do head -c 1M /dev/zero > f$i; sleep 0.02; done; echo finished');
      expect(slow).toMatchObject({ workspace_exceeded: true, exit_code: null, timed_out: false });
      expect(slow.stdout).not.toContain('finished');
      expect(Date.now() - t0).toBeLessThan(15_000);
      // The files stay; an exec may bring the workspace back under the cap.
      expect(await run('ls | wc -l; rm -f f*')).toMatchObject({ workspace_exceeded: false, exit_code: 0 });
      // Faster than a measurement interval: the answer still says so, and the next exec sees it.
      expect(await run('head -c 20M /dev/zero > big')).toMatchObject({ workspace_exceeded: true, exit_code: 0 });
      expect(
        capped.events.filter((e) => e.event === 'sandbox:exec_finished').map((e) => e.data.workspace_exceeded),
      ).toEqual([true, false, true]);
      expect(await run('rm big; echo ok')).toMatchObject({ workspace_exceeded: false, stdout: 'ok\n' });
    } finally {
      await capped.svc.stop(Date.now() + 10_000);
    }
  }, 60_000);

  it('destroys idle sessions after their timeout', async () => {
    const s = await t.svc.createSession({ session_id: 'idle', idle_timeout_s: 1 });
    await t.svc.exec({ language: 'bash', session_id: 'idle', code: 'true' });
    const reaped = () => t.events.some((e) => e.event === 'sandbox:session_destroyed' && e.data.session_id === 'idle');
    await vi.waitFor(() => expect(reaped()).toBe(true), { timeout: 6_000, interval: 100 });
    expect(t.svc.listSessions().sessions.map((x) => x.session_id)).not.toContain('idle');
    expect(
      t.events.some(
        (e) => e.event === 'sandbox:session_destroyed' && e.data.session_id === 'idle' && e.data.reason === 'idle',
      ),
    ).toBe(true);
    await t.svc.containers.settle();
    expect((await ownedContainers(t.svc.owner)).map((c) => c.Id)).not.toContain(s.container_id);
  }, 20_000);

  it('a session can use another image the user has', async () => {
    // Any local image works; reuse the default one under a second tag to prove the name is honoured.
    const docker = t.svc.engine.docker;
    await docker.getImage(t.config.image).tag({ repo: 'agentd-sandbox-test', tag: 'alt' });
    try {
      const s = await t.svc.createSession({ session_id: 'alt', image: 'agentd-sandbox-test:alt' });
      expect(s.image).toBe('agentd-sandbox-test:alt');
      const r = await t.svc.exec({ language: 'bash', session_id: 'alt', code: 'echo ok' });
      expect(r.stdout).toBe('ok\n');
      const c = await docker.getContainer(s.container_id!).inspect();
      expect(c.Config.Image).toBe('agentd-sandbox-test:alt');
      await t.svc.destroySession('alt');
      await expect(t.svc.createSession({ image: 'agentd-no-such-image:404' })).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      await expect(
        t.svc.exec({ language: 'bash', code: 'true', image: 'agentd-no-such-image:404' }),
      ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    } finally {
      await docker
        .getImage('agentd-sandbox-test:alt')
        .remove({ noprune: true })
        .catch(() => undefined);
    }
  }, 30_000);

  it('sessions survive a restart: snapshot, stop, a new service on the same home restores them', async () => {
    await t.svc.createSession({ session_id: 'durable' });
    await t.svc.exec({ language: 'bash', session_id: 'durable', code: 'echo persisted > kept.txt' });
    const snap = JSON.parse(JSON.stringify(t.svc.snapshot())) as unknown;
    await t.svc.stop(Date.now() + 10_000);
    expect(await ownedContainers(t.svc.owner)).toEqual([]);
    // The kernel's order: restore the checkpoint into the plugin, then start it.
    const next = new SandboxService({ config: t.config, log: silentLog, home: t.home, emit: () => undefined });
    next.restore(snap);
    await next.start();
    t = { ...t, svc: next }; // afterAll stops this one
    expect(next.listSessions().sessions.map((x) => x.session_id)).toEqual(['durable']);
    const r = await next.exec({ language: 'bash', session_id: 'durable', code: 'cat kept.txt' });
    expect(r.stdout).toBe('persisted\n');
    // Without a snapshot nothing is invented from leftover workspace directories.
    await next.stop(Date.now() + 10_000);
    const bare = await startService({}, t.home);
    t = bare;
    expect(bare.svc.listSessions().sessions).toEqual([]);
    expect(fs.readdirSync(path.join(t.home, 'sandbox', 'sessions'))).toEqual([]);
  }, 60_000);
});
