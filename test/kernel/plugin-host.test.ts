/**
 * The plugin host without a socket: a real router, database and plugin files, driven step by step,
 * so a test can ask a plugin's events while it is still starting and after it stopped.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { rootContext } from '../../daemon/call-context.js';
import { KERNEL_NAMESPACES } from '../../daemon/kernel-events.js';
import { openDatabase } from '../../daemon/persistence.js';
import { PluginHost } from '../../daemon/plugin-host.js';
import { Router } from '../../daemon/router.js';
import { ROOT } from '../helpers/daemon-process.js';

const HOST_PLUGINS = path.join(ROOT, 'test', 'kernel', 'host-plugins');
/** Every plugin of the checkout stays out: only the test's own are loaded. */
const REAL_PLUGINS = fs.readdirSync(path.join(ROOT, 'plugins'));
const g = globalThis as { agentdTestGate?: Promise<void> };

function makeHost(
  opts: {
    disabled?: string[];
    rawConfig?: Record<string, Record<string, unknown>>;
    startTimeoutMs?: number;
    checkResponses?: boolean;
  } = {},
) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-host-'));
  const log = pino({ level: 'silent' });
  const router = new Router({ log, maxDepth: 8, historySize: 100, defaultTimeoutMs: 5000 });
  const db = openDatabase(path.join(home, 'db'));
  const host = new PluginHost({
    router,
    db,
    log,
    rawConfig: opts.rawConfig ?? {},
    home,
    root: ROOT,
    runDir: path.join(home, 'run'),
    logsDir: path.join(home, 'logs'),
    dbDir: path.join(home, 'db'),
    pluginDirs: [HOST_PLUGINS],
    disabled: [...REAL_PLUGINS, ...(opts.disabled ?? [])],
    startTimeoutMs: opts.startTimeoutMs ?? 10_000,
    checkResponses: opts.checkResponses,
    reservedNamespaces: KERNEL_NAMESPACES,
    isShuttingDown: () => false,
  });
  const ask = (event: string) =>
    Promise.resolve().then(() =>
      router.dispatch({
        event,
        data: {},
        context: rootContext(),
        deadline: Date.now() + 5000,
        connectionId: null,
        external: true,
      }),
    );
  const close = () => (db.close(), fs.rmSync(home, { recursive: true, force: true }));
  return { host, router, ask, close };
}

let cleanup: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanup) c();
  cleanup = [];
  delete g.agentdTestGate;
});

describe('plugin host', () => {
  it('answers UNAVAILABLE until start resolved, then hands the instance to handlers, and UNAVAILABLE again after stop', async () => {
    const t = makeHost({ disabled: ['hanging', 'configured', 'needs_configured'] });
    cleanup.push(t.close);
    let open!: () => void;
    g.agentdTestGate = new Promise<void>((r) => (open = r));
    await t.host.load();
    const starting = t.host.startAll();
    await expect(t.ask('gated:ping')).rejects.toMatchObject({ code: 'UNAVAILABLE', details: { plugin: 'gated' } });
    expect(t.host.list().find((p) => p.name === 'gated')).toMatchObject({ status: 'loading' });
    open();
    await starting;
    expect(await t.ask('gated:ping')).toMatchObject({ calls: 1 });
    expect(await t.ask('gated:ping')).toMatchObject({ calls: 2 });
    expect(await t.host.stopAll(Date.now() + 5000)).toEqual([]);
    await expect(t.ask('gated:ping')).rejects.toMatchObject({ code: 'UNAVAILABLE', details: { plugin: 'gated' } });
  });

  it('reports why a plugin failed as a code beside the text', async () => {
    const t = makeHost({ rawConfig: { configured: { port: 'eighty' } }, startTimeoutMs: 300 });
    cleanup.push(t.close);
    await t.host.load();
    await t.host.startAll();
    const by = Object.fromEntries(t.host.list().map((p) => [p.name, p]));
    expect(by.gated).toMatchObject({ status: 'ok', reason_code: null });
    expect(by.hanging).toMatchObject({ status: 'failed', reason_code: 'START_TIMEOUT' });
    expect(by.configured).toMatchObject({
      status: 'failed',
      reason_code: 'CONFIG_INVALID',
      reason: expect.stringContaining('port'),
    });
    expect(by.needs_configured).toMatchObject({ status: 'failed', reason_code: 'DEPENDENCY_FAILED' });
    expect(by.kg).toMatchObject({ status: 'stopped', reason_code: 'DISABLED' });
    await expect(t.ask('hanging:x')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(t.ask('configured:port')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await t.host.stopAll(Date.now() + 5000);
  });

  it('checks answers against their response schema when asked (and only then)', async () => {
    for (const checkResponses of [true, false]) {
      const t = makeHost({ checkResponses, disabled: ['hanging', 'configured', 'needs_configured'] });
      cleanup.push(t.close);
      await t.host.load();
      await t.host.startAll();
      expect(await t.ask('answers:good')).toEqual({ n: 1 });
      if (checkResponses) {
        await expect(t.ask('answers:bad')).rejects.toMatchObject({
          code: 'HANDLER_ERROR',
          details: { issues: [{ path: 'n' }] },
        });
      } else expect(await t.ask('answers:bad')).toEqual({ n: 'one' });
      await t.host.stopAll(Date.now() + 5000);
    }
  });

  it('gives a config section parsed by the schema to start', async () => {
    const t = makeHost({ rawConfig: { configured: { port: 8080 } }, disabled: ['hanging'] });
    cleanup.push(t.close);
    await t.host.load();
    await t.host.startAll();
    expect(await t.ask('configured:port')).toEqual({ port: 8080 });
    await t.host.stopAll(Date.now() + 5000);
  });
});
