/**
 * The gateway's config section. Off unless `listen` is set; a bare port binds loopback only, so
 * exposing the daemon beyond the machine always takes an explicit host.
 */
import { z } from 'zod';

const d = (description: string) => ({ description });

export const gatewayConfigSchema = z.object({
  listen: z
    .union([z.string(), z.number().int()])
    .optional()
    .register(
      z.globalRegistry,
      d('Where to listen: "host:port", "[::1]:port" or a bare port (loopback). Absent: the gateway is off'),
    ),
  token: z
    .string()
    .min(16)
    .optional()
    .register(z.globalRegistry, d('Bearer token (AGENTD_GATEWAY_TOKEN); absent: one is generated into token_file')),
  token_file: z
    .string()
    .optional()
    .register(
      z.globalRegistry,
      d('Where the generated token is kept, mode 0600 (default $AGENTD_HOME/run/gateway.token)'),
    ),
  cors_origins: z
    .array(z.string())
    .default([])
    .register(
      z.globalRegistry,
      d('Origins allowed to call from a browser page served elsewhere; empty: no CORS headers'),
    ),
  body_limit_bytes: z.coerce
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024)
    .register(z.globalRegistry, d('Largest request body (and WebSocket message); larger ones answer 413 / close 1009')),
  client_queue: z.coerce
    .number()
    .int()
    .min(10)
    .max(1_000_000)
    .default(1000)
    .register(
      z.globalRegistry,
      d('Events queued for a slow SSE/WebSocket client before the oldest are dropped (monitor:dropped)'),
    ),
  max_clients: z.coerce
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(4096)
    .register(z.globalRegistry, d('Open SSE and WebSocket clients at most; more answer 429')),
  max_inflight_per_socket: z.coerce
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(256)
    .register(z.globalRegistry, d('Requests one WebSocket may have in flight; more answer OVERLOADED')),
  heartbeat_s: z.coerce
    .number()
    .min(1)
    .max(3600)
    .default(15)
    .register(z.globalRegistry, d('SSE comment / WebSocket ping interval; a WebSocket silent for two is closed')),
  probe_cache_ms: z.coerce
    .number()
    .int()
    .min(0)
    .max(600_000)
    .default(2000)
    .register(z.globalRegistry, d("How long /metrics reuses the plugins' status answers")),
  dashboard: z.coerce.boolean().default(true).register(z.globalRegistry, d('Serve the web dashboard at /')),
});

export type GatewayConfig = z.output<typeof gatewayConfigSchema>;

export interface ListenAddress {
  host: string;
  port: number;
}

/** `"127.0.0.1:8377"`, `"[::1]:8377"`, `"8377"`, `8377` → host and port; a bare port is loopback. */
export function parseListen(v: string | number): ListenAddress {
  const s = String(v).trim();
  let host = '127.0.0.1';
  let portText = s;
  const bracket = /^\[([^\]]+)\]:(\d+)$/.exec(s);
  if (bracket) [, host, portText] = bracket;
  else if (s.includes(':')) {
    const i = s.lastIndexOf(':');
    host = s.slice(0, i) || '127.0.0.1';
    portText = s.slice(i + 1);
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new Error(`gateway.listen: "${s}" is not "host:port" or a port`);
  return { host, port };
}

export const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\./.test(host);
