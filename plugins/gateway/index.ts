/**
 * gateway: HTTP for web clients and metrics. Off unless `gateway.listen` is set. It speaks to the
 * router like any plugin (requests, subscriptions, the history through monitor:events) and adds no
 * protocol of its own: HTTP bodies are events' data, SSE and WebSocket carry the socket's frames.
 */
import { z } from 'zod';
import { definePlugin } from '../../daemon/plugin-api.js';
import { gatewayConfigSchema } from './config.js';
import type { GatewayService } from './service.js';

const VERSION = '0.1.0';

/** The instance: the running service, or none when the gateway is off. */
interface Gateway {
  service: GatewayService | null;
}

const OFF = { listening: false, reason: 'gateway.listen is not set' };

export default definePlugin({
  name: 'gateway',
  namespaces: ['gateway'],
  description:
    'HTTP, Server-Sent Events and WebSocket access to every event, Prometheus metrics, and a live web dashboard.',
  configSchema: gatewayConfigSchema,
  publishes: {
    'gateway:closing':
      'The last frame every SSE stream and WebSocket gets before the gateway closes it (the stream then ends; a WebSocket closes with 1001), after the events already emitted: `{reason: shutdown|stopped, shutdown: {reason, deadline} | null}`. `shutdown` is what system:shutdown_begin said; `stopped`: the gateway alone stopped (a reload).',
    'gateway:gap':
      'Sent only to an SSE client resuming with Last-Event-ID, before the replayed events, when the history no longer holds all it missed: `{last_event_id, first_seq, last_seq, oldest_seq, reason: history|too_many}` (events in first_seq..last_seq may have been lost).',
  },

  async start(ctx): Promise<Gateway> {
    if (ctx.config.listen === undefined) return { service: null };
    // Loaded only when the gateway is on: a daemon without it pays for none of fastify.
    const { GatewayService } = await import('./service.js');
    const service = new GatewayService(ctx, ctx.config, VERSION);
    try {
      await service.start();
    } catch (e) {
      await service.stop().catch(() => undefined);
      throw e;
    }
    return { service };
  },

  stop: (gw) => gw.service?.stop(),

  health: (gw) => gw.service?.status() ?? OFF,

  events: {
    'gateway:status': {
      summary:
        'The gateway: whether and where it listens, where its token file is (never the token), its clients, queued and dropped frames.',
      schema: z.object({}).passthrough(),
      response: z.looseObject({ listening: z.boolean() }),
      handler: (_d, gw) => gw.service?.status() ?? OFF,
    },
  },
});
