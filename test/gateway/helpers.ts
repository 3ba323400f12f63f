/** A real daemon with the gateway on a free loopback port (and the fixture plugin), and small HTTP helpers. */
import path from 'node:path';
import YAML from 'yaml';
import { ROOT, startDaemon, type DaemonHandle, type DaemonOptions } from '../helpers/daemon-process.js';
import { openStream, type StreamFrame } from '../../interfaces/dashboard/sse-client.js';

export const TOKEN = 'test-token-0123456789abcdef';
export const FIXTURES = path.join(ROOT, 'test', 'gateway', 'fixture-plugins');

export interface Gateway {
  daemon: DaemonHandle;
  base: string;
  port: number;
  token: string;
  get(path: string, init?: RequestInit): Promise<Response>;
  post(event: string, body?: unknown, init?: RequestInit): Promise<Response>;
}

export interface GatewayOptions extends Omit<DaemonOptions, 'config'> {
  gateway?: Record<string, unknown>;
  /** Other sections of agentd.yaml. */
  sections?: Record<string, Record<string, unknown>>;
  /** false: no configured token (the gateway generates one). */
  configuredToken?: boolean;
}

export async function startGateway(opts: GatewayOptions = {}): Promise<Gateway> {
  const { gateway, sections, configuredToken = true, ...rest } = opts;
  const config = YAML.stringify({
    ...sections,
    // wfix stands in for the workflow plugin's read side: only where a test disables the real one.
    daemon: { plugin_dirs: [FIXTURES], disabled_plugins: ['wfix'], ...sections?.daemon },
    gateway: { listen: '127.0.0.1:0', ...gateway },
  });
  const daemon = await startDaemon({
    ...rest,
    config,
    env: { ...(configuredToken ? { AGENTD_GATEWAY_TOKEN: TOKEN } : {}), ...rest.env },
  });
  const st = await daemon.client.request<{ port: number; listening: boolean }>('gateway:status');
  if (!st.listening) throw new Error(`gateway not listening:\n${daemon.output()}`);
  const base = `http://127.0.0.1:${st.port}`;
  const auth = { authorization: `Bearer ${TOKEN}` };
  return {
    daemon,
    base,
    port: st.port,
    token: TOKEN,
    get: (p, init = {}) =>
      fetch(base + p, { ...init, headers: { ...auth, ...(init.headers as Record<string, string> | undefined) } }),
    post: (event, body, init = {}) =>
      fetch(`${base}/v1/events/${event}`, {
        method: 'POST',
        ...init,
        headers: {
          ...auth,
          'content-type': 'application/json',
          ...(init.headers as Record<string, string> | undefined),
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      }),
  };
}

/** An SSE stream collecting its frames (with their ids), for assertions with vi.waitFor. */
export function collect(g: Gateway, patterns: string[], o: { lastEventId?: string; maxRate?: number } = {}) {
  const frames: Array<StreamFrame & { id?: string }> = [];
  const h = openStream({
    base: g.base,
    token: g.token,
    patterns,
    ...o,
    onFrame: (f, id) => frames.push({ ...f, ...(id ? { id } : {}) }),
    fatal: () => true,
  });
  return { frames, events: () => frames.filter((f) => f.kind === 'event'), close: () => h.close(), handle: h };
}
