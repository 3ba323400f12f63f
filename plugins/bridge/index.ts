/**
 * bridge — federation over NATS. Off unless `bridge.url` and `bridge.node` are configured
 * (AGENTD_BRIDGE_URL, AGENTD_BRIDGE_NODE). See README.md, "Federation".
 */
import { z } from 'zod';
import { EVENT_NAME_RE } from '../../client/protocol.js';
import { DaemonError, definePlugin } from '../../daemon/plugin-api.js';
import type { Bridge } from './bridge.js';
import { bridgeConfigSchema, type BridgeConfig } from './config.js';

/** The instance: the running bridge, or what status reports while federation is off. */
type Federation = { bridge: Bridge; off: null } | { bridge: null; off: Record<string, unknown> };

const running = (f: Federation): Bridge => {
  if (!f.bridge)
    throw new DaemonError(
      'UNAVAILABLE',
      'the bridge is off: set bridge.url and bridge.node (AGENTD_BRIDGE_URL, AGENTD_BRIDGE_NODE) to join a fleet',
    );
  return f.bridge;
};

/** What status reports while federation is off; the NATS client is not even loaded then. */
function disabledStatus(cfg: BridgeConfig): Record<string, unknown> {
  return {
    enabled: false,
    node: cfg.node ?? null,
    url: null,
    state: 'disabled',
    ready: false,
    peers: [],
    serve: cfg.serve,
    durable: cfg.durable,
    forward: cfg.forward,
  };
}

export default definePlugin({
  name: 'bridge',
  namespaces: ['bridge'],
  description:
    'Federation over NATS: publish and deliver events across daemons, serve and forward requests, durable cross-host work on JetStream.',
  // Start after the plugins whose namespaces it may serve, so it serves the fleet last and stops first.
  optionalDependsOn: ['checkpoint', 'budget', 'kg', 'sandbox', 'completion', 'agent'],
  configSchema: bridgeConfigSchema,
  publishes: {
    'bridge:state':
      'The NATS connection changed state: `{node, state: connecting|connected|reconnecting|disconnected|closed, reason}`.',
    'bridge:peer_up': 'A daemon of the fleet appeared (or restarted): `{node, serves, restarted}`.',
    'bridge:peer_down': 'A daemon of the fleet went silent for three heartbeats: `{node, last_seen}`.',
  },
  async start(ctx): Promise<Federation> {
    const cfg = ctx.config;
    if (!cfg.url) return { bridge: null, off: disabledStatus(cfg) };
    const { Bridge } = await import('./bridge.js');
    const bridge = new Bridge(ctx, cfg);
    await bridge.start();
    return { bridge, off: null };
  },
  async stop(f, _ctx, deadline) {
    await f.bridge?.stop(deadline);
  },
  health: (f) => (f.bridge ? f.bridge.health() : { enabled: false }),
  events: {
    'bridge:status': {
      summary: 'Federation state: connection, peers seen, subjects, JetStream queues, lag and counters.',
      schema: z.object({}).passthrough(),
      response: z.looseObject({ enabled: z.boolean(), state: z.string() }),
      handler: (_d, f) => (f.bridge ? f.bridge.status() : f.off),
    },
    'bridge:request': {
      summary:
        'Run a request on another daemon: on `node`, or on whichever daemon serves its namespace. Answers `{node, data, duration_ms}`.',
      description:
        "Requests for namespaces no local plugin owns are forwarded without this; use it to address one node, or to reach a peer's read-only kernel events (system:ping, system:health, system:discover, system:help, plugin:list, bridge:status).",
      schema: z.object({
        event: z
          .string()
          .regex(EVENT_NAME_RE, 'event names are namespace:action')
          .register(z.globalRegistry, { description: 'The event to run remotely' }),
        data: z.record(z.string(), z.unknown()).default({}).register(z.globalRegistry, { description: 'Its data' }),
        node: z
          .string()
          .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/)
          .optional()
          .register(z.globalRegistry, { description: 'Run it on this node (default: any node serving the namespace)' }),
      }),
      errors: ['UNAVAILABLE', 'TIMEOUT'],
      response: z.object({ node: z.string(), data: z.record(z.string(), z.unknown()), duration_ms: z.number() }),
      handler: async ({ event, data, node }, f, call) => {
        const t0 = performance.now();
        const r = await running(f).request(event, data, call.context, call.remainingMs(), node);
        return { node: r.node, data: r.data, duration_ms: Math.round((performance.now() - t0) * 1000) / 1000 };
      },
    },
  },
});
