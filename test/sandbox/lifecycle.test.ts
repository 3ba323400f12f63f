/**
 * Lifecycle: crash leftovers, shutdown with work in flight, no engine at start, an engine that goes
 * away mid-run and comes back (through a socket proxy we can cut, so the real engine keeps serving
 * everyone else), queueing bounds, abandoned requests, bad input.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, afterEach, expect, it } from 'vitest';
import { processStart } from '../../plugins/sandbox/containers.js';
import { describeDocker, IMAGE, ownedContainers, startService, tempHome, type TestService } from './docker-env.js';

const live: TestService[] = [];
async function service(raw: Record<string, unknown> = {}, home?: string): Promise<TestService> {
  const t = await startService(raw, home);
  live.push(t);
  return t;
}

/** A Unix-socket proxy to the real engine that a test can cut and restore. */
class EngineProxy {
  readonly path = path.join(tempHome(), 'docker.sock');
  private server: net.Server | null = null;
  private readonly conns = new Set<net.Socket>();
  async open(): Promise<void> {
    fs.rmSync(this.path, { force: true });
    // Half-open both ways, like the engine's own socket: an exec ends its stdin with a half-close.
    this.server = net.createServer({ allowHalfOpen: true }, (c) => {
      const u = net.connect({ path: '/var/run/docker.sock', allowHalfOpen: true });
      this.conns.add(c).add(u);
      const drop = () => {
        c.destroy();
        u.destroy();
        this.conns.delete(c);
        this.conns.delete(u);
      };
      c.on('error', drop).on('close', drop);
      u.on('error', drop).on('close', drop);
      c.pipe(u).pipe(c);
    });
    await new Promise<void>((r) => this.server!.listen(this.path, r));
  }
  async cut(): Promise<void> {
    const s = this.server;
    this.server = null;
    for (const c of this.conns) c.destroy();
    await new Promise<void>((r) => (s ? s.close(() => r()) : r()));
    fs.rmSync(this.path, { force: true });
  }
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describeDocker('sandbox lifecycle', () => {
  afterEach(async () => {
    for (const t of live.splice(0)) {
      await t.svc.stop(Date.now() + 10_000);
      expect(await ownedContainers(t.svc.owner)).toEqual([]);
    }
  }, 30_000);

  afterAll(async () => {
    // Nothing of ours anywhere, whatever home it came from.
    const docker = new Docker();
    const left = await docker.listContainers({ all: true, filters: { label: ['org.agentd.sandbox.kind'] } });
    for (const c of left.filter((c) => c.Names.some((n) => n.includes('-test-leftover'))))
      await docker.getContainer(c.Id).remove({ force: true });
  });

  it('removes labelled leftovers of a crashed run at start, and only its own', async () => {
    const home = tempHome();
    const crashed = await startService({}, home); // never stopped: stands for a daemon killed -9
    const orphan = await crashed.svc.containers.create({
      image: IMAGE,
      kind: 'exec',
      limits: crashed.svc.defaultLimits(),
    });
    const other = await (
      await service({})
    ).svc.containers.create({ image: IMAGE, kind: 'exec', limits: crashed.svc.defaultLimits() });
    crashed.svc.engine.stop();
    crashed.svc.containers.unwatchOoms();
    const t = await service({}, home);
    expect(t.svc.owner).toBe(crashed.svc.owner);
    const ids = (await new Docker().listContainers({ all: true })).map((c) => c.Id);
    expect(ids).not.toContain(orphan.id);
    expect(ids).toContain(other.id); // another daemon's container is not ours to reap
  }, 30_000);

  it('removes containers of a dead daemon from this host even when its home is gone', async () => {
    const docker = new Docker();
    const mk = (process: string) =>
      docker.createContainer({
        Image: IMAGE,
        Cmd: ['true'],
        Labels: {
          'org.agentd.sandbox': '1',
          'org.agentd.sandbox.owner': 'ghost',
          'org.agentd.sandbox.process': process,
        },
      });
    const dead = await mk(`${os.hostname()}/999999999/12345`);
    const alive = await mk(`${os.hostname()}/${process.pid}/${processStart(process.pid)}`);
    const elsewhere = await mk('another-host/999999999/12345');
    try {
      await service({});
      const ids = (
        await docker.listContainers({ all: true, filters: { label: ['org.agentd.sandbox.owner=ghost'] } })
      ).map((c) => c.Id);
      expect(ids).not.toContain(dead.id);
      expect(ids).toContain(alive.id);
      expect(ids).toContain(elsewhere.id);
    } finally {
      for (const c of [dead, alive, elsewhere]) await c.remove({ force: true }).catch(() => undefined);
    }
  }, 30_000);

  it('shutdown: a running exec gets until the deadline, then is killed; nothing is left', async () => {
    const t = await service({ pool_size: 1 });
    await t.svc.pool.settled();
    const quick = t.svc.exec({ language: 'bash', code: 'sleep 1; echo finished', timeout_s: 30 });
    const slow = t.svc.exec({ language: 'bash', code: 'trap "" TERM; sleep 60', timeout_s: 60 });
    const slowResult = slow.then(
      () => 'resolved',
      (e: { code?: string }) => e.code,
    );
    await until('both execs running', () => t.svc.health().running_execs === 2);
    const t0 = Date.now();
    await t.svc.stop(Date.now() + 4_000);
    expect(Date.now() - t0).toBeLessThan(8_000);
    expect((await quick).stdout).toBe('finished\n');
    expect(await slowResult).toBe('CANCELLED');
    expect(await ownedContainers(t.svc.owner)).toEqual([]);
    await expect(t.svc.exec({ language: 'bash', code: 'true' })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  }, 30_000);

  it('no engine at start: degraded with the reason, sandbox answers UNAVAILABLE, status still answers', async () => {
    const t = await service({ docker_socket: '/nonexistent/docker.sock', probe_min_ms: 100, probe_max_ms: 200 });
    expect(t.statuses.at(-1)).toMatchObject({
      status: 'degraded',
      code: 'BACKEND_UNAVAILABLE',
      reason: expect.stringContaining('ENOENT'),
    });
    await expect(t.svc.exec({ language: 'python', code: 'print(1)' })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringContaining('unreachable'),
    });
    await expect(t.svc.createSession({})).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    const st = await t.svc.status();
    expect(st).toMatchObject({
      status: 'degraded',
      engine: { reachable: false, reason: expect.stringContaining('ENOENT') },
    });
    expect(t.svc.listSessions()).toEqual({ sessions: [] });
  }, 20_000);

  it('engine lost mid-run: execs fail fast with UNAVAILABLE; it recovers by itself when the engine is back', async () => {
    const proxy = new EngineProxy();
    await proxy.open();
    const t = await service({
      docker_socket: proxy.path,
      pool_size: 1,
      probe_min_ms: 100,
      probe_max_ms: 400,
      health_interval_ms: 300,
    });
    await t.svc.pool.settled();
    expect((await t.svc.exec({ language: 'python', code: 'print(1)' })).stdout).toBe('1\n');
    const running = t.svc.exec({ language: 'bash', code: 'sleep 30', timeout_s: 60 }).then(
      () => 'resolved',
      (e: { code?: string }) => e.code,
    );
    await until('exec running', () => t.svc.health().running_execs === 1);
    const t0 = Date.now();
    await proxy.cut();
    expect(await running).toBe('UNAVAILABLE');
    expect(Date.now() - t0).toBeLessThan(5_000);
    await until('degraded', () => t.statuses.at(-1)?.status === 'degraded');
    await expect(t.svc.exec({ language: 'python', code: 'print(1)' })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(t.events.some((e) => e.event === 'sandbox:engine' && e.data.reachable === false)).toBe(true);
    await proxy.open();
    await until('recovered', () => t.statuses.at(-1)?.status === 'ok');
    expect((await t.svc.exec({ language: 'python', code: 'print(2)' })).stdout).toBe('2\n');
    // The container orphaned by the cut is reaped on recovery; only the refilled pool remains.
    await t.svc.pool.settled();
    await t.svc.containers.settle();
    await until('orphans reaped', async () =>
      (await ownedContainers(t.svc.owner)).every((c) => c.Labels['org.agentd.sandbox.kind'] === 'pool'),
    );
  }, 40_000);

  it('a missing default image: degraded with a hint, execs NOT_FOUND; ok once the image appears', async () => {
    const docker = new Docker();
    const tag = `agentd-sandbox-late:${process.pid}`;
    const t = await service({ image: tag, pool_size: 1, health_interval_ms: 200 });
    try {
      expect(t.statuses.at(-1)).toMatchObject({
        status: 'degraded',
        code: 'NOT_CONFIGURED',
        reason: expect.stringContaining('sandbox-image.sh build'),
      });
      await expect(t.svc.exec({ language: 'bash', code: 'true' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect(t.svc.pool.available).toBe(0);
      await docker.getImage(IMAGE).tag({ repo: tag.split(':')[0], tag: tag.split(':')[1] });
      await until('ok after the image appeared', () => t.statuses.at(-1)?.status === 'ok');
      await until('pool filled', () => t.svc.pool.available === 1);
      expect((await t.svc.exec({ language: 'bash', code: 'echo late' })).stdout).toBe('late\n');
    } finally {
      await t.svc.stop(Date.now() + 10_000);
      await docker
        .getImage(tag)
        .remove({ noprune: true })
        .catch(() => undefined);
    }
  }, 30_000);

  it('bounded queue: past max_concurrent + max_queue execs answer OVERLOADED', async () => {
    const t = await service({ max_concurrent: 1, max_queue: 1 });
    const a = t.svc.exec({ language: 'bash', code: 'sleep 1' });
    const b = t.svc.exec({ language: 'bash', code: 'echo b' });
    await expect(t.svc.exec({ language: 'bash', code: 'true' })).rejects.toMatchObject({ code: 'OVERLOADED' });
    expect((await a).exit_code).toBe(0);
    expect((await b).stdout).toBe('b\n');
  }, 30_000);

  it('an abandoned request (client gone) kills its exec', async () => {
    const t = await service({});
    const ac = new AbortController();
    const p = t.svc.exec({ language: 'bash', code: 'sleep 60', timeout_s: 60 }, { signal: ac.signal });
    await until('exec running', () => t.svc.health().running_execs === 1);
    const t0 = Date.now();
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(Date.now() - t0).toBeLessThan(5_000);
  }, 30_000);

  it("the caller's deadline bounds the exec", async () => {
    const t = await service({});
    const until = Date.now() + 1_500;
    const r = await t.svc.exec(
      { language: 'bash', code: 'sleep 30', timeout_s: 30 },
      { remainingMs: () => until - Date.now() },
    );
    expect(r.timed_out).toBe(true);
    expect(r.duration_ms).toBeLessThan(3_000);
  }, 30_000);

  it('per-exec limits are applied to a warm container', async () => {
    const t = await service({ pool_size: 1 });
    await t.svc.pool.settled();
    const r = await t.svc.exec({
      language: 'bash',
      memory_mb: 200,
      cpus: 0.25,
      code: 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max',
    });
    expect(Number(r.stdout)).toBe(200 * 1024 * 1024);
    expect(t.events.find((e) => e.event === 'sandbox:exec_started' && e.data.exec_id === r.exec_id)?.data.warm).toBe(
      true,
    );
  }, 30_000);

  it('a warm container that died while idle is replaced transparently', async () => {
    const t = await service({ pool_size: 2 });
    await t.svc.pool.settled();
    for (const id of t.svc.pool.ids()) await new Docker().getContainer(id).kill(); // behind the service's back
    const r = await t.svc.exec({ language: 'python', code: 'print("still fine")' });
    expect(r.stdout).toBe('still fine\n');
    expect(t.events.filter((e) => e.event === 'sandbox:exec_started' && e.data.exec_id === r.exec_id)).toHaveLength(1);
  }, 30_000);

  it('stdin, env, files (text, base64, executable) and exit codes reach the code', async () => {
    const t = await service({});
    const r = await t.svc.exec({
      language: 'bash',
      code: 'read -r line; echo "in=$line env=$GREETING"; cat data/a.txt; od -An -tu1 bin.dat | tr -s " "; ./tool.sh; exit 7',
      stdin: 'from stdin\nsecond line\n',
      env: { GREETING: 'hello world' },
      files: [
        { path: 'data/a.txt', content: 'text file\n' },
        { path: 'bin.dat', content: Buffer.from([0, 200, 7]).toString('base64'), encoding: 'base64' },
        { path: 'tool.sh', content: '#!/bin/sh\necho tool ran\n', executable: true },
      ],
    });
    expect(r.stdout).toBe('in=from stdin env=hello world\ntext file\n 0 200 7\ntool ran\n');
    expect(r.exit_code).toBe(7);
    const node = await t.svc.exec({
      language: 'node',
      code: 'let d="";process.stdin.on("data",c=>d+=c).on("end",()=>console.log(d.toUpperCase()))',
      stdin: 'abc',
    });
    expect(node.stdout).toBe('ABC\n');
    const r2 = await t.svc.exec({ language: 'r', code: 'cat(sum(1:10), "\\n"); quit(status = 3)' });
    expect(r2).toMatchObject({ stdout: '55 \n', exit_code: 3 });
  }, 30_000);

  it('code that exits 126 with a runtime-like message is reported, never re-run', async () => {
    const t = await service({ pool_size: 1 });
    await t.svc.pool.settled();
    const r = await t.svc.exec({
      language: 'bash',
      code: 'echo run >> /tmp/count; echo "cannot exec in a stopped state: unknown"; exit 126',
    });
    expect(r.exit_code).toBe(126);
    expect(t.events.filter((e) => e.event === 'sandbox:exec_started' && e.data.exec_id === r.exec_id)).toHaveLength(1);
  }, 30_000);

  it('large code and code with odd bytes go through the staged-file path intact', async () => {
    const t = await service({});
    const big = `x = ${JSON.stringify('y'.repeat(200_000))}\nprint(len(x))`;
    expect((await t.svc.exec({ language: 'python', code: big })).stdout).toBe('200000\n');
    // Quotes, $, backslashes and backticks reach the interpreter untouched (no shell re-parsing).
    const quoting = 'import sys\nsys.stdout.write("it\'s \\"q\\" $HOME \\\\ `x` \'\'\'")';
    expect((await t.svc.exec({ language: 'python', code: quoting })).stdout).toBe("it's \"q\" $HOME \\ `x` '''");
    const nul = await t.svc.exec({
      language: 'python',
      code: 'print("before")\n# \0 a NUL in a comment\nprint("after")',
    });
    // The NUL arrived intact (staged as a file, not an env var): Python 3.11 stops reading at it.
    expect(nul.stdout).toBe('before\n');
  }, 30_000);

  it.each([
    [{ memory_mb: 1_000_000 }, 'memory_mb'],
    [{ cpus: 64 }, 'cpus'],
    [{ timeout_s: 10_000 }, 'timeout_s'],
    [{ files: [{ path: '../../etc/passwd', content: 'x' }] }, 'files'],
    [{ files: [{ path: '/etc/passwd', content: 'x' }] }, 'files'],
  ])(
    'bad input %j answers INVALID_DATA naming %s',
    async (extra, field) => {
      const t = await service({});
      const err = await t.svc.exec({ language: 'bash', code: 'true', ...extra }).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'INVALID_DATA',
        details: { issues: [{ path: expect.arrayContaining([field]) }] },
      });
      expect(await ownedContainers(t.svc.owner)).toEqual([]); // bad input changes nothing
    },
    20_000,
  );

  it('files larger than the workspace answer INVALID_DATA', async () => {
    const t = await service({ limits: { workspace_mb: 1 } });
    const big = 'x'.repeat(2 * 1024 * 1024);
    await expect(
      t.svc.exec({ language: 'bash', code: 'true', files: [{ path: 'big', content: big }] }),
    ).rejects.toMatchObject({ code: 'INVALID_DATA' });
    // 800 KB of content fits 1 MiB, but 400 files take a 4 KiB page each: only tar inside finds out.
    const files = Array.from({ length: 400 }, (_, i) => ({ path: `f${i}`, content: 'x'.repeat(2000) }));
    await expect(t.svc.exec({ language: 'bash', code: 'true', files })).rejects.toMatchObject({ code: 'INVALID_DATA' });
  }, 20_000);
});
