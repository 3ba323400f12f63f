/** A real daemon with the gateway on a free loopback port, and small HTTP helpers for the tests. */
import { startDaemon, type DaemonHandle, type DaemonOptions } from '../helpers/daemon-process.js';

export const TOKEN = 'test-token-0123456789abcdef';

export interface Gateway {
  daemon: DaemonHandle;
  base: string;
  port: number;
  token: string;
  /** fetch with the bearer token. */
  get(path: string, init?: RequestInit): Promise<Response>;
  post(event: string, body?: unknown, init?: RequestInit): Promise<Response>;
}

export async function startGateway(opts: DaemonOptions & { gatewayConfig?: string } = {}): Promise<Gateway> {
  const daemon = await startDaemon({
    ...opts,
    config: `gateway:\n  listen: "127.0.0.1:0"\n${opts.gatewayConfig ?? ''}${opts.config ?? ''}`,
    env: { AGENTD_GATEWAY_TOKEN: TOKEN, ...opts.env },
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
    get: (path, init = {}) => fetch(base + path, { ...init, headers: { ...auth, ...(init.headers as Record<string, string> | undefined) } }),
    post: (event, body, init = {}) =>
      fetch(`${base}/v1/events/${event}`, {
        method: 'POST',
        ...init,
        headers: { ...auth, 'content-type': 'application/json', ...(init.headers as Record<string, string> | undefined) },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      }),
  };
}
