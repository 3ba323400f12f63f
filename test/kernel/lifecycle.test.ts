import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { ROOT, startDaemon, tempHome } from '../helpers/daemon-process.js';
import { collect, waitFor } from '../helpers/events.js';
import { RawConn } from '../helpers/raw-socket.js';
import { KERNEL_TEST_PLUGINS, kernelConfig, startKernel } from './kit.js';

type PluginRow = { name: string; status: string; reason: string | null; reason_code: string | null };

describe('plugin host', () => {
  it('contains plugins that fail to load, to start, or that form a cycle; the rest serve', async () => {
    const d = await startKernel({ broken: true });
    try {
      const { plugins } = await d.client.request<{ plugins: PluginRow[] }>('plugin:list');
      const by = Object.fromEntries(plugins.map((p) => [p.name, p]));
      expect(by.testkit.status).toBe('ok');
      expect(by.broken_start).toMatchObject({ status: 'failed', reason_code: 'START_FAILED' });
      expect(by.broken_load).toMatchObject({ status: 'failed', reason_code: 'LOAD_FAILED' });
      expect(by.cycle_a).toMatchObject({ status: 'failed', reason_code: 'DEPENDENCY_CYCLE' });
      expect(by.cycle_b).toMatchObject({ status: 'failed', reason_code: 'DEPENDENCY_CYCLE' });
      expect(by.completion).toMatchObject({ status: 'stopped', reason_code: 'DISABLED' });
      // The human reason says what happened, beside the code.
      expect(by.broken_start.reason).toContain('backend exploded at start');
      await expect(d.client.request('broken_start:hello')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      await expect(d.client.request('broken_load:anything')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      expect(await d.client.request('testkit:echo', { value: 1 })).toEqual({ value: 1 });
      const h = await d.client.request<{ status: string; healthy: boolean }>('system:health');
      expect(h).toMatchObject({
        status: 'unhealthy',
        healthy: false,
        plugins: { broken_start: { status: 'failed', reason_code: 'START_FAILED' } },
      });
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });

  it('describes events in the KSI discover shape and in help', async () => {
    const d = await startKernel();
    try {
      const r = await d.client.request<{
        events: Record<
          string,
          Array<{
            event: string;
            plugin: string;
            summary: string;
            parameters: Record<string, { type: string; required: boolean }>;
          }>
        >;
      }>('system:discover');
      expect(Object.keys(r.events)).toEqual(expect.arrayContaining(['system', 'monitor', 'plugin', 'testkit']));
      const typed = r.events.testkit.find((e) => e.event === 'testkit:typed')!;
      expect(typed.plugin).toBe('testkit');
      expect(typed.parameters.name).toMatchObject({ type: 'string', required: true });
      expect(typed.parameters.tags).toMatchObject({ required: false });
      const only = await d.client.request<{ events: Record<string, unknown> }>('system:discover', {
        namespace: 'monitor',
      });
      expect(Object.keys(only.events)).toEqual(['monitor']);
      // Kernel-internal events are not offered to clients.
      expect(JSON.stringify(r)).not.toContain('plugin:snapshot');
      await expect(d.client.request('plugin:snapshot')).rejects.toMatchObject({ code: 'UNKNOWN_EVENT' });
      const help = await d.client.request<{ event: string; parameters: Record<string, unknown> }>('system:help', {
        event: 'monitor:events',
      });
      expect(Object.keys(help.parameters)).toEqual(['patterns', 'since_seq', 'until_seq', 'limit']);
      await expect(d.client.request('system:help', { event: 'no:such' })).rejects.toMatchObject({
        code: 'UNKNOWN_EVENT',
      });
    } finally {
      await d.stop();
    }
  });

  it('reloads a plugin from disk carrying its state across', async () => {
    // Inside the checkout, so the plugin resolves its packages (zod) the way plugins/ does.
    fs.mkdirSync(path.join(ROOT, '.cache'), { recursive: true });
    const dir = fs.mkdtempSync(path.join(ROOT, '.cache', 'reload-'));
    fs.cpSync(path.join(KERNEL_TEST_PLUGINS, 'testkit'), path.join(dir, 'testkit'), { recursive: true });
    // The copy imports the kernel by relative path: point it back at the checkout.
    const file = path.join(dir, 'testkit', 'index.ts');
    fs.writeFileSync(
      file,
      fs
        .readFileSync(file, 'utf8')
        .replace('../../../../daemon/plugin-api.js', path.join(ROOT, 'daemon', 'plugin-api.ts')),
    );
    const d = await startDaemon({
      config: `daemon:\n  plugin_dirs: [${JSON.stringify(dir)}]\n  disabled_plugins: [completion, budget, sandbox, kg, agent, checkpoint, bridge]\n`,
    });
    try {
      await d.client.request('testkit:state', { add: 41 });
      fs.writeFileSync(
        file,
        fs
          .readFileSync(file, 'utf8')
          .replace("summary: 'Answer with the data it was given.'", "summary: 'Echo, version two.'"),
      );
      const r = await d.client.request('plugin:reload', { name: 'testkit' });
      expect(r).toMatchObject({ plugin: 'testkit', status: 'ok', reloads: 1 });
      expect((await d.client.request<{ counter: number }>('testkit:state', { add: 1 })).counter).toBe(42);
      const help = await d.client.request<{ summary: string }>('system:help', { event: 'testkit:echo' });
      expect(help.summary).toBe('Echo, version two.');
      // A broken edit is refused and the running version keeps serving.
      fs.writeFileSync(file, 'export default { nonsense: true };');
      await expect(d.client.request('plugin:reload', { name: 'testkit' })).rejects.toMatchObject({ code: 'CONFLICT' });
      expect((await d.client.request<{ counter: number }>('testkit:state')).counter).toBe(42);
      await expect(d.client.request('plugin:reload', { name: 'ghost' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    } finally {
      await d.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('dev mode', () => {
  it('hot-reloads a plugin whose file changed, keeping its state', async () => {
    fs.mkdirSync(path.join(ROOT, '.cache'), { recursive: true });
    const dir = fs.mkdtempSync(path.join(ROOT, '.cache', 'hot-'));
    fs.mkdirSync(path.join(dir, 'hot'));
    const file = path.join(dir, 'hot', 'index.ts');
    const source = (greeting: string) => `import { z } from 'zod';
export default { name: 'hot', namespaces: ['hot'],
  start: (ctx: { restored?: { n: number } }) => ({ n: ctx.restored?.n ?? 0 }),
  events: { 'hot:hi': { summary: 'hi', schema: z.object({}), handler: (_d: unknown, hot: { n: number }) => ({ greeting: '${greeting}', n: ++hot.n }) } },
  snapshot: (hot: { n: number }) => ({ n: hot.n }), restore: (hot: { n: number }, s: { n: number }) => { hot.n = s.n; } };`;
    fs.writeFileSync(file, source('hello'));
    const d = await startDaemon({
      config: `daemon:\n  dev: true\n  plugin_dirs: [${JSON.stringify(dir)}]\n  disabled_plugins: [completion, budget, sandbox, kg, agent, checkpoint, bridge]\n`,
    });
    try {
      expect(await d.client.request('hot:hi')).toEqual({ greeting: 'hello', n: 1 });
      fs.writeFileSync(file, source('bonjour'));
      // Until the reload is through, the old version answers (or, between its stop and the new start, UNAVAILABLE).
      const r = await vi.waitFor(
        async () => {
          const x = await d.client.request<{ greeting: string; n: number }>('hot:hi');
          if (x.greeting !== 'bonjour') throw new Error(`still ${x.greeting}`);
          return x;
        },
        { timeout: 30_000, interval: 100 },
      );
      expect(r.n).toBeGreaterThanOrEqual(2);
    } finally {
      await d.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('socket and lifecycle', () => {
  it('makes the socket 0600 in a 0700 directory and writes a pid file', async () => {
    const d = await startKernel();
    try {
      expect(fs.statSync(d.socketPath).mode & 0o777).toBe(0o600);
      expect(fs.statSync(path.dirname(d.socketPath)).mode & 0o777).toBe(0o700);
      expect(fs.readFileSync(path.join(d.home, 'run', 'daemon.pid'), 'utf8').trim()).toBe(String(d.proc.pid));
    } finally {
      await d.stop();
    }
  });

  it('refuses a second daemon on a live socket, and replaces a stale one', async () => {
    const d = await startKernel();
    const second = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'daemon', 'main.ts')], {
      cwd: ROOT,
      env: {
        ...process.env,
        AGENTD_HOME: d.home,
        AGENTD_SOCKET: d.socketPath,
        AGENTD_CONFIG: path.join(d.home, 'agentd.yaml'),
      },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(second.status).toBe(3);
    expect(second.stderr).toMatch(/already listening/);
    expect((await d.client.request('system:ping')).pong).toBe(true);
    // kill -9 leaves the socket file behind: the next start must clear it.
    await d.kill('SIGKILL');
    expect(fs.existsSync(d.socketPath)).toBe(true);
    const again = await startKernel({ home: d.home });
    expect((await again.client.request('system:ping')).pong).toBe(true);
    await again.stop();
  });

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'shuts down cleanly on %s: exit 0, socket and pid removed, subscribers told',
    async (sig) => {
      const d = await startKernel();
      const watcher = await RawConn.connect(d.socketPath);
      watcher.request('monitor:subscribe', { patterns: ['system:*'] }, 'w');
      await watcher.one();
      const t0 = Date.now();
      d.proc.kill(sig);
      expect(await d.exited).toBe(0);
      const elapsed = Date.now() - t0;
      expect(elapsed).toBeLessThan(5000);
      const events: string[] = [];
      while (watcher.pending() > 0) events.push((await watcher.one()).event);
      expect(events).toEqual(['system:shutdown_begin', 'system:shutdown_phase', 'system:shutdown_complete']);
      expect(fs.existsSync(d.socketPath)).toBe(false);
      expect(fs.existsSync(path.join(d.home, 'run', 'daemon.pid'))).toBe(false);
      watcher.close();
    },
  );

  it('answers SHUTTING_DOWN to requests that arrive during shutdown', async () => {
    const dir = tempHome('agentd-slowstop-');
    fs.mkdirSync(path.join(dir, 'slowstop'));
    fs.writeFileSync(
      path.join(dir, 'slowstop', 'index.ts'),
      `export default { name: 'slowstop', namespaces: ['slowstop'], stop: () => new Promise((r) => setTimeout(r, 1500)) };`,
    );
    const d = await startDaemon({
      config: kernelConfig().replace(`plugin_dirs: [`, `plugin_dirs: [${JSON.stringify(dir)}, `),
    });
    const other = await RawConn.connect(d.socketPath);
    const begun = await collect(d.client, ['system:shutdown_begin']);
    await d.client.request('system:shutdown', { reason: 'test' });
    await waitFor(() => begun.length > 0, 10_000, 'system:shutdown_begin');
    other.request('system:ping', {}, 'late');
    expect((await other.one()).error.code).toBe('SHUTTING_DOWN');
    expect(await d.exited).toBe(0);
  });

  it('forces exit on a second signal while a plugin will not stop', async () => {
    const dir = tempHome('agentd-hang-');
    fs.mkdirSync(path.join(dir, 'hangstop'));
    fs.writeFileSync(
      path.join(dir, 'hangstop', 'index.ts'),
      `export default { name: 'hangstop', namespaces: ['hangstop'], stop: () => new Promise(() => {}) };`,
    );
    const d = await startDaemon({
      config: kernelConfig().replace(`plugin_dirs: [`, `plugin_dirs: [${JSON.stringify(dir)}, `),
    });
    const begun = await collect(d.client, ['system:shutdown_begin']);
    d.proc.kill('SIGTERM');
    await waitFor(() => begun.length > 0, 10_000, 'system:shutdown_begin'); // the first signal was taken
    d.proc.kill('SIGTERM');
    expect(await d.exited).toBe(1);
    expect(fs.existsSync(d.socketPath)).toBe(false);
  });

  it('exits 2 on a bad config file, saying what is wrong', () => {
    const home = tempHome();
    fs.writeFileSync(path.join(home, 'agentd.yaml'), 'daemon:\n  max_frame_bytes: lots\n');
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'daemon', 'main.ts')], {
      cwd: ROOT,
      env: { ...process.env, AGENTD_HOME: home, AGENTD_CONFIG: path.join(home, 'agentd.yaml') },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/max_frame_bytes/);
  });
});
