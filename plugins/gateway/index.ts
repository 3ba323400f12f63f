/**
 * gateway: HTTP for web clients and metrics. Off unless `gateway.listen` is set. It speaks to the
 * router like any plugin (requests, subscriptions, the history through monitor:events) and adds no
 * protocol of its own: HTTP bodies are events' data, SSE and WebSocket carry the socket's frames.
 */
import { z } from 'zod';
import { defineEvent, definePlugin, type PluginContext } from '../../daemon/plugin-api.js';
import { gatewayConfigSchema } from './config.js';
import type { GatewayService } from './service.js';

const VERSION = '0.1.0';

let service: GatewayService | null = null;

export default definePlugin({
  name: 'gateway',
  namespaces: ['gateway'],
  description: 'HTTP, Server-Sent Events and WebSocket access to every event, Prometheus metrics, and a live web dashboard.',
  configSchema: gatewayConfigSchema,
  publishes: {
    'gateway:gap': 'Sent only to an SSE client resuming with Last-Event-ID, before the replayed events, when the history no longer holds all it missed: `{last_event_id, first_seq, last_seq, oldest_seq, reason: history|too_many}` (events in first_seq..last_seq may have been lost).',
  },

  async start(ctx: PluginContext) {
    const config = gatewayConfigSchema.parse(ctx.config);
    if (config.listen === undefined) return;
    // Loaded only when the gateway is on: a daemon without it pays for none of fastify.
    const { GatewayService } = await import('./service.js');
    service = new GatewayService(ctx, config, VERSION);
    try {
      await service.start();
    } catch (e) {
      await service.stop().catch(() => undefined);
      service = null;
      throw e;
    }
  },

  async stop() {
    await service?.stop();
    service = null;
  },

  health() {
    return service ? service.status() : { listening: false };
  },

  events: {
    'gateway:status': defineEvent({
      summary: 'The gateway: whether and where it listens, where its token file is (never the token), its clients, queued and dropped frames.',
      schema: z.object({}).passthrough(),
      handler: () => (service ? service.status() : { listening: false, reason: 'gateway.listen is not set' }),
    }),
  },
});
