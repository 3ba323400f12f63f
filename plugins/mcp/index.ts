/**
 * mcp: Model Context Protocol, both ways. Agents use the tools of configured MCP servers (stdio
 * commands or Streamable HTTP URLs, started on demand and supervised); `daemon-control mcp` offers
 * the daemon's events as MCP tools through `mcp:exposed` and `mcp:invoke`. The work lives in
 * service.ts; this file declares the events and binds them.
 */
import { z } from 'zod';
import { definePlugin } from '../../daemon/plugin-api.js';
import { configSchema, EXPOSE_RE } from './config.js';
import { McpService } from './service.js';

const serverName = z
  .string()
  .min(1)
  .max(128)
  .register(z.globalRegistry, { description: 'A server named in mcp.servers' });
const callId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,79}$/, 'letters, digits and ._:- (1-80)');

export default definePlugin({
  name: 'mcp',
  namespaces: ['mcp'],
  description:
    "MCP servers as agent tools (supervised, started on demand), and the daemon's events as MCP tools for daemon-control mcp.",
  configSchema,
  publishes: {
    'mcp:server_state':
      'An MCP server changed state: {server, state: idle|starting|ready|backoff|failed|stopped, reason, pid, restarts}.',
    'mcp:call_started':
      "A tool call to an MCP server began: {server, tool, agent_id, deadline}, with the caller's causality.",
    'mcp:call_finished':
      'A tool call to an MCP server ended: {server, tool, agent_id, duration_ms, is_error, error_code}.',
    'mcp:tools_changed': 'An MCP server said its tool list changed: {server}; the next listing asks it again.',
    'mcp:tool_rejected':
      "A server's tool a model API would refuse (name or input schema), so agents do not get it: {server, tool, model_name, reason}.",
  },

  start(ctx) {
    const mcp = new McpService({
      config: ctx.config,
      log: ctx.log,
      request: ctx.request,
      emit: ctx.emit,
      setStatus: ctx.setStatus,
    });
    ctx.log.info({ servers: Object.keys(ctx.config.servers), expose: ctx.config.expose }, 'mcp started');
    return mcp;
  },

  stop: (mcp) => mcp.stop(),

  health: (mcp) => mcp.health(),

  events: {
    'mcp:servers': {
      summary:
        'The configured MCP servers: transport, state (idle until first used, starting, ready, backoff after an exit, failed, stopped), pid, restarts, calls.',
      schema: z.object({}),
      response: z.looseObject({}),
      handler: (_d, mcp) => mcp.servers(),
    },

    'mcp:tools': {
      summary:
        'The tools of one MCP server (or of every configured one), as declared, each with the name a model sees (<server>__<tool>) and, when a model API would refuse it, why.',
      description:
        'Starts a server that is not running. The list is cached until the server says it changed (refresh: true asks again). Without server, a server that cannot be reached is named under errors instead of failing the answer.',
      schema: z.object({
        server: serverName.optional(),
        refresh: z
          .boolean()
          .default(false)
          .register(z.globalRegistry, { description: 'Ask the server again instead of answering from the cache' }),
      }),
      errors: ['NOT_FOUND', 'UNAVAILABLE', 'TIMEOUT'],
      response: z.looseObject({}),
      handler: (d, mcp, call) => mcp.tools(d, call),
    },

    'mcp:call': {
      summary:
        'Call a tool of an MCP server: {server, tool, arguments} → {content, structured_content?, is_error, duration_ms}.',
      description:
        "Runs with the caller's causality and deadline (at most mcp.call_timeout_ms, or the server's timeout_ms); cancelled when the caller is. A server that exits during the call answers UNAVAILABLE and is restarted with backoff; one that does not answer in time answers TIMEOUT. A tool that reports a failure itself answers normally with is_error: true.",
      schema: z.object({
        server: serverName,
        tool: z
          .string()
          .min(1)
          .max(256)
          .register(z.globalRegistry, { description: "The tool's name as the server declares it" }),
        arguments: z
          .record(z.string(), z.unknown())
          .default({})
          .register(z.globalRegistry, { description: "The tool's input, checked by the server against its schema" }),
      }),
      emits: ['mcp:call_started', 'mcp:call_finished'],
      errors: ['NOT_FOUND', 'UNAVAILABLE', 'TIMEOUT', 'CANCELLED', 'INVALID_DATA'],
      defaultTimeoutMs: 120_000,
      response: z.looseObject({ content: z.array(z.unknown()), is_error: z.boolean(), duration_ms: z.number() }),
      handler: (d, mcp, call) => mcp.call(d, call),
    },

    'mcp:exposed': {
      summary:
        'The daemon events daemon-control mcp offers as MCP tools (mcp.expose, or the list given): name <ns>_<action>, description, JSON Schema input, default timeout.',
      schema: z.object({
        expose: z
          .array(z.string().regex(EXPOSE_RE, 'a namespace ("kg"), an event ("sandbox:exec") or "ns:*"'))
          .optional()
          .register(z.globalRegistry, { description: 'Instead of mcp.expose: namespaces, events or ns:*' }),
      }),
      response: z.looseObject({}),
      handler: (d, mcp, call) => mcp.exposed(d, call),
    },

    'mcp:invoke': {
      summary:
        'Run one event for daemon-control mcp under a causality root named call_id (its events carry context.root_id = call_id, for progress), cancellable with mcp:abort.',
      schema: z.object({
        event: z
          .string()
          .regex(/^[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)+$/)
          .register(z.globalRegistry, { description: 'The event to run' }),
        data: z.record(z.string(), z.unknown()).default({}).register(z.globalRegistry, { description: 'Its data' }),
        call_id: callId.register(z.globalRegistry, { description: 'Unique id of this call, chosen by the caller' }),
      }),
      errors: ['CONFLICT', 'CANCELLED'],
      defaultTimeoutMs: 600_000,
      response: z.looseObject({}),
      handler: (d, mcp, call) => mcp.invoker.invoke(d, call),
    },

    'mcp:abort': {
      summary:
        'Cancel a call made with mcp:invoke: its request is aborted, and an agent turn, completion or workflow run it started is cancelled.',
      schema: z.object({ call_id: callId.register(z.globalRegistry, { description: 'The call' }) }),
      response: z.object({ aborted: z.boolean() }),
      handler: (d, mcp) => ({ aborted: mcp.invoker.abort(d.call_id) }),
    },
  },
});
