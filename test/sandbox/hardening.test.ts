/**
 * Each hardening setting, twice: as the engine reports it (inspect) and by what code inside can do.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { describeDocker, IMAGE, ownedContainers, startService, type TestService } from './docker-env.js';

describeDocker('sandbox hardening', () => {
  let t: TestService;
  let info: Docker.ContainerInspectInfo;
  const limits = { memory_mb: 96, cpus: 0.5, pids: 40 };
  const run = (code: string, extra: Record<string, unknown> = {}) =>
    t.svc.exec({ language: 'bash', code, timeout_s: 20, memory_mb: limits.memory_mb, cpus: limits.cpus, ...extra });

  beforeAll(async () => {
    t = await startService({ limits: { pids: limits.pids } });
    const m = await t.svc.containers.create({ image: IMAGE, kind: 'exec', limits });
    info = await m.container.inspect();
    await t.svc.containers.remove(m.container);
  }, 30_000);

  afterAll(async () => {
    await t?.svc.stop(Date.now() + 10_000);
    if (t) expect(await ownedContainers(t.svc.owner)).toEqual([]);
  }, 30_000);

  it('inspect: the engine applied every setting', () => {
    const hc = info.HostConfig;
    expect(hc.NetworkMode).toBe('none');
    expect(hc.CapDrop).toEqual(['ALL']);
    expect(hc.CapAdd ?? []).toEqual([]);
    expect(hc.SecurityOpt).toContain('no-new-privileges:true');
    expect(hc.ReadonlyRootfs).toBe(true);
    expect(hc.Privileged).toBe(false);
    expect(hc.Init).toBe(true);
    expect(hc.PidsLimit).toBe(40);
    expect(hc.Memory).toBe(96 * 1024 * 1024);
    expect(hc.MemorySwap).toBe(hc.Memory);
    expect(hc.NanoCpus).toBe(500_000_000);
    expect(info.Config.User).toBe('1000:1000');
    expect(hc.Tmpfs?.['/tmp']).toContain('noexec');
    expect(hc.ShmSize).toBe(t.config.limits.shm_mb * 1024 * 1024);
    expect(hc.Ulimits).toEqual(
      expect.arrayContaining([expect.objectContaining({ Name: 'nofile', Soft: 1024, Hard: 1024 })]),
    );
    expect(info.Config.Labels['org.agentd.sandbox.owner']).toBe(t.svc.owner);
    expect(info.NetworkSettings.Networks).not.toHaveProperty('bridge');
  });

  it('runs as an unprivileged user with no capabilities and no-new-privileges', async () => {
    const r = await run('id -u; id -g; grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status');
    expect(r.exit_code).toBe(0);
    const [uid, gid, ...caps] = r.stdout.trim().split('\n');
    expect(uid).toBe('1000');
    expect(gid).toBe('1000');
    // Seccomp 2: the engine's default syscall filter stays on (nothing asks for unconfined).
    expect(caps).toEqual(['CapEff:\t0000000000000000', 'CapBnd:\t0000000000000000', 'NoNewPrivs:\t1', 'Seccomp:\t2']);
  }, 20_000);

  it('has no network: only loopback, and connecting out fails', async () => {
    const r = await t.svc.exec({
      language: 'python',
      timeout_s: 20,
      code: [
        'import socket, os',
        'print(sorted(os.listdir("/sys/class/net")))',
        'for host in [("1.1.1.1", 53), ("deb.debian.org", 80)]:',
        '    try:',
        '        socket.create_connection(host, timeout=3); print("CONNECTED", host)',
        '    except OSError as e: print("blocked", type(e).__name__)',
      ].join('\n'),
    });
    expect(r.stdout).toContain("['lo']");
    expect(r.stdout).not.toContain('CONNECTED');
    expect(r.stdout.match(/blocked/g)).toHaveLength(2);
  }, 20_000);

  it('root filesystem is read-only; /tmp is noexec; /workspace is writable', async () => {
    const r = await run(
      [
        'touch /etc/x 2>/dev/null && echo ROOT_WRITABLE || echo root-ro',
        'touch /usr/bin/x 2>/dev/null && echo USR_WRITABLE || echo usr-ro',
        'cp /bin/true /tmp/t && (/tmp/t && echo TMP_EXEC || echo tmp-noexec)',
        'echo data > /workspace/f && cat /workspace/f',
      ].join('\n'),
    );
    expect(r.stdout.trim().split('\n')).toEqual(['root-ro', 'usr-ro', 'tmp-noexec', 'data']);
  }, 20_000);

  it('/dev/shm is small, noexec and size-limited', async () => {
    const r = await run(
      [
        'df -k /dev/shm | tail -1 | tr -s " " | cut -d" " -f2',
        'head -c 40M /dev/zero > /dev/shm/big; echo rc=$?',
        'du -m /dev/shm/big | cut -f1',
        'rm /dev/shm/big; cp /bin/true /dev/shm/t && (/dev/shm/t && echo SHM_EXEC || echo shm-noexec)',
      ].join('\n'),
      { memory_mb: 256 },
    );
    const [kb, rc, mb, exec] = r.stdout.trim().split('\n');
    expect(Number(kb)).toBe(t.config.limits.shm_mb * 1024);
    expect(rc).toBe('rc=1');
    expect(Number(mb)).toBeLessThanOrEqual(t.config.limits.shm_mb);
    expect(exec).toBe('shm-noexec');
  }, 20_000);

  it('the workspace tmpfs is size-limited', async () => {
    const r = await run('head -c 100M /dev/zero > /workspace/big; echo rc=$?; du -m /workspace/big | cut -f1', {
      memory_mb: 256,
    });
    const mb = Number(r.stdout.trim().split('\n').pop());
    expect(r.stdout).toContain('rc=1');
    expect(mb).toBeLessThanOrEqual(t.config.limits.workspace_mb);
  }, 20_000);

  it('cannot see host files or processes', async () => {
    const marker = `/tmp/agentd-host-secret-${process.pid}`;
    fs.writeFileSync(marker, 'secret');
    try {
      // Every process the code can see (no ps in the image): the container's init, the supervisor,
      // the code and what it started, never the host's.
      const r = await run(
        `test -e ${marker} && echo SEEN || echo unseen; cat /proc/1/comm; for p in /proc/[0-9]*; do cat $p/comm; done | sort -u | tr '\\n' ' '`,
      );
      const [seen, init, all] = r.stdout.split('\n');
      expect(seen).toBe('unseen');
      expect(init).toMatch(/docker-init|tini/); // pid 1 is the container's init, not the host's
      const seenProcs = all!.trim().split(' ');
      expect(seenProcs).toEqual(expect.arrayContaining(['docker-init', 'sh', 'bash']));
      for (const comm of seenProcs) expect(['docker-init', 'sh', 'bash', 'cat', 'sort', 'tr']).toContain(comm);
    } finally {
      fs.rmSync(marker);
    }
  }, 20_000);

  it('limits: memory without swap, cpu quota, pids, ulimits as seen from inside', async () => {
    const r = await run(
      [
        'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max',
        'cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.swap.max 2>/dev/null || echo n/a',
        'cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null | paste -sd/ || cut -d" " -f1,2 --output-delimiter=/ /sys/fs/cgroup/cpu.max',
        'cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max',
        'ulimit -n; ulimit -c',
      ].join('\n'),
    );
    const [mem, memsw, cpu, pids, nofile, core] = r.stdout.trim().split('\n');
    expect(Number(mem)).toBe(96 * 1024 * 1024);
    if (memsw !== 'n/a' && memsw !== '0') expect(Number(memsw)).toBe(96 * 1024 * 1024);
    const [q, p] = cpu!.split('/').map(Number);
    expect(q! / p!).toBeCloseTo(0.5, 2);
    expect(pids).toBe('40');
    expect(nofile).toBe('1024');
    expect(core).toBe('0');
  }, 20_000);

  it('the pids limit refuses processes beyond it', async () => {
    const r = await t.svc.exec({
      language: 'python',
      timeout_s: 20,
      code: [
        'import subprocess',
        'ps = []',
        'try:',
        '    for i in range(200): ps.append(subprocess.Popen(["sleep", "30"]))',
        'except OSError as e: print("refused", e.errno)',
        'print(len(ps))',
      ].join('\n'),
    });
    const [refused, started] = r.stdout.trim().split('\n');
    expect(refused).toBe('refused 11'); // EAGAIN from fork
    expect(Number(started)).toBeLessThan(limits.pids);
  }, 20_000);

  it('has an init process reaping zombies (Init: true)', async () => {
    const r = await run('cat /proc/1/comm');
    expect(r.stdout.trim()).toMatch(/docker-init|tini/);
  }, 20_000);
});
