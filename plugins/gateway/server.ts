/**
 * The HTTP server (fastify): auth on every route but `/healthz` and the dashboard's static files
 * (which hold no data; the page asks for the token), size limits, CORS only when configured, and
 * the routes: events, stream, WebSocket, OpenAPI, metrics, dashboard.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import websocket from '@fastify/websocket';
import { DaemonError } from '../../client/errors.js';
import { EVENT_NAME_RE } from '../../client/protocol.js';
import type { PluginContext } from '../../daemon/plugin-api.js';
import { BEARER_PROTOCOL, TokenCheck } from './auth.js';
import type { Clients } from './clients.js';
import type { GatewayConfig } from './config.js';
import type { Asset } from './dashboard-build.js';
import type { Socket } from 'node:net';
import { webClientId, type Door } from './door.js';
import { checkTimeout, errorBody, httpStatusOf, parseBody } from './envelope.js';
import { toDaemonError } from './errors.js';
import type { Metrics } from './metrics.js';
import { buildOpenApi } from './openapi.js';
import { parseStreamQuery, serveStream } from './sse.js';
import { serveSocket } from './ws.js';

export interface ServerDeps {
  ctx: Pick<PluginContext, 'subscribe' | 'request' | 'log'>;
  /** The daemon is shutting down or the gateway stopping: no new streams or WebSockets. */
  closing: () => boolean;
  config: GatewayConfig;
  token: TokenCheck;
  door: Door;
  clients: Clients;
  metrics: Metrics;
  assets: Map<string, Asset> | null;
  version: string;
}

const PUBLIC = new Set(['/healthz', '/', '/index.html', '/app.js', '/app.css', '/favicon.ico']);

/** One admission participant per HTTP connection: a client's connections are its lanes, as on the socket. */
const httpClients = new WeakMap<Socket, string>();

function httpClientId(socket: Socket): string {
  let id = httpClients.get(socket);
  if (id === undefined) httpClients.set(socket, (id = webClientId('http')));
  return id;
}

function sendError(reply: FastifyReply, e: unknown): FastifyReply {
  const de = toDaemonError(e);
  return reply.code(httpStatusOf(de.code)).type('application/json; charset=utf-8').send(errorBody(de));
}

export async function buildServer(d: ServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    bodyLimit: d.config.body_limit_bytes,
    logger: false,
    forceCloseConnections: true,
    return503OnClosing: true,
  });

  // Bodies are read raw and parsed here, so a bad one answers the socket's codes (BAD_JSON, BAD_FRAME).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  if (d.config.cors_origins.length) {
    const cors = (await import('@fastify/cors')).default;
    await app.register(cors, {
      origin: d.config.cors_origins,
      allowedHeaders: ['authorization', 'content-type', 'last-event-id'],
      maxAge: 600,
    });
  }
  await app.register(websocket, {
    options: {
      maxPayload: d.config.body_limit_bytes,
      // A browser offers the token as a subprotocol; answer with the plain protocol name it also offers, never echo the token.
      handleProtocols: (protocols: Set<string>) => [...protocols].find((p) => !p.startsWith(BEARER_PROTOCOL)) ?? false,
    },
  });

  app.addHook('onRequest', async (req, reply) => {
    const url = req.url.split('?')[0];
    if (PUBLIC.has(url) && req.method === 'GET') return;
    if (req.method === 'OPTIONS') return;
    const ok =
      d.token.header(req.headers.authorization) ||
      (url === '/v1/ws' && d.token.subprotocol(req.headers['sec-websocket-protocol'] as string | undefined) !== null);
    if (!ok) {
      reply.header('www-authenticate', 'Bearer realm="agentd"');
      return sendError(
        reply,
        new DaemonError(
          'UNAUTHORIZED',
          req.headers.authorization ? 'wrong bearer token' : 'missing bearer token (Authorization: Bearer <token>)',
        ),
      );
    }
    if ((url === '/v1/stream' || url === '/v1/ws') && d.closing())
      return sendError(reply, new DaemonError('SHUTTING_DOWN', 'the daemon is shutting down: no new streams'));
  });

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, _req, reply) => {
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      return sendError(
        reply,
        new DaemonError('FRAME_TOO_LARGE', `body exceeds ${d.config.body_limit_bytes} bytes`, {
          max_bytes: d.config.body_limit_bytes,
        }),
      );
    if (err instanceof DaemonError) return sendError(reply, err);
    if (err.statusCode && err.statusCode < 500) return sendError(reply, new DaemonError('BAD_FRAME', err.message));
    d.ctx.log.error({ err }, 'gateway route failed');
    return sendError(reply, new DaemonError('HANDLER_ERROR', err.message));
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, new DaemonError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)),
  );

  app.get('/healthz', async () => ({ ok: true }));

  app.post(
    '/v1/events/:event',
    async (req: FastifyRequest<{ Params: { event: string }; Querystring: { timeout_ms?: string } }>, reply) => {
      const { event } = req.params;
      if (!EVENT_NAME_RE.test(event))
        return sendError(
          reply,
          new DaemonError('BAD_FRAME', `"${event.slice(0, 100)}" is not an event name (namespace:action)`),
        );
      if (event === 'monitor:subscribe' || event === 'monitor:unsubscribe') {
        return sendError(
          reply,
          new DaemonError(
            'CONFLICT',
            `${event} needs a connection: use GET /v1/stream (Server-Sent Events) or GET /v1/ws`,
          ),
        );
      }
      const data = parseBody(req.body as Buffer | undefined);
      if (data instanceof DaemonError) return sendError(reply, data);
      const t = checkTimeout(req.query.timeout_ms === undefined ? undefined : Number(req.query.timeout_ms));
      if (t instanceof DaemonError) return sendError(reply, t);
      // A client that hangs up before its answer cancels the call, as a socket client does by closing.
      const gone = new AbortController();
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) gone.abort(new DaemonError('CANCELLED', 'client disconnected'));
      });
      try {
        const out = await d.door.call(event, data, t, 'http', {
          id: httpClientId(req.raw.socket),
          signal: gone.signal,
        });
        return reply.type('application/json; charset=utf-8').send(JSON.stringify({ data: out }));
      } catch (e) {
        return sendError(reply, e);
      }
    },
  );

  app.get('/v1/stream', (req: FastifyRequest<{ Querystring: Record<string, unknown> }>, reply) => {
    const q = parseStreamQuery(req.query, req.headers['last-event-id'] as string | undefined);
    if (q instanceof DaemonError) return sendError(reply, q);
    if (d.clients.full)
      return sendError(reply, new DaemonError('OVERLOADED', `at most ${d.config.max_clients} streams and WebSockets`));
    reply.hijack();
    // Headers fastify would have added (CORS) are on the reply; the hijacked response carries them over.
    void serveStream(
      d.ctx,
      d.clients,
      d.config.client_queue,
      q,
      req.raw,
      reply.raw,
      reply.getHeaders() as Record<string, string>,
    );
  });

  app.get('/v1/ws', { websocket: true }, (socket, req) => {
    if (d.clients.full) {
      socket.close(1013, 'too many clients');
      return;
    }
    void req;
    serveSocket(d.ctx, d.door, d.clients, socket, {
      queueLimit: d.config.client_queue,
      maxInflight: d.config.max_inflight_per_socket,
    });
  });

  app.get('/v1/openapi.json', async (req, reply) => {
    const host = req.headers.host;
    return reply
      .type('application/json; charset=utf-8')
      .send(
        JSON.stringify(
          buildOpenApi(d.door.list(), { version: d.version, ...(host ? { serverUrl: `http://${host}` } : {}) }),
        ),
      );
  });

  app.get('/metrics', async (_req, reply) => reply.type(d.metrics.contentType).send(await d.metrics.text()));

  if (d.assets) {
    const assets = d.assets;
    const serve = (file: string) => async (_req: FastifyRequest, reply: FastifyReply) => {
      const a = assets.get(file);
      if (!a) return sendError(reply, new DaemonError('NOT_FOUND', `no ${file}`));
      return reply
        .type(a.type)
        .header('cache-control', 'no-cache')
        .header('x-content-type-options', 'nosniff')
        .send(a.body);
    };
    app.get('/', serve('/index.html'));
    app.get('/index.html', serve('/index.html'));
    app.get('/app.js', serve('/app.js'));
    app.get('/app.css', serve('/app.css'));
  }
  return app;
}
