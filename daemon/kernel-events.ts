/**
 * The kernel's own events: system:*, monitor:*, plugin:*. Registered like a plugin's, so they are
 * validated, discoverable and catalogued the same way.
 */
import { z } from 'zod';
import { DaemonError } from '../client/errors.js';
import { definePlugin, PLUGIN_REASON_CODES, type EmittedEvent, type PluginReasonCode } from './plugin-api.js';
import { isValidPattern, matchPatterns } from '../client/pattern-index.js';
import { redactDeep } from './redact.js';
import { describeParameters, jsonSchemaOf } from './schema-doc.js';
import type { Kernel } from './kernel.js';
import { byCodePoint } from './text-order.js';
import { captureExternal, describeFullState, freezeExternal, putBackExternal, thawExternal } from './full-state.js';

const pattern = z.string().refine(isValidPattern, 'a pattern is "ns:action", "ns:*", "ns:**" or "*"');

// Response schemas: what the kernel's events answer.
const pluginStatusSchema = z.enum(['ok', 'degraded', 'failed', 'stopped', 'loading']);
const reasonCodeSchema = z.enum(Object.keys(PLUGIN_REASON_CODES) as [PluginReasonCode, ...PluginReasonCode[]]);
const contextSchema = z.looseObject({
  id: z.string(),
  parent_id: z.string().nullable(),
  root_id: z.string(),
  depth: z.number().int(),
  agent_id: z.string().optional(),
});
const emittedEventSchema = z.object({
  event: z.string(),
  data: z.record(z.string(), z.unknown()),
  seq: z.number().int(),
  timestamp: z.number(),
  context: contextSchema,
});
const parameterDocSchema = z.object({
  type: z.string(),
  required: z.boolean(),
  description: z.string().optional(),
  default: z.unknown().optional(),
  enum: z.array(z.unknown()).optional(),
});
const eventDocSchema = z.looseObject({
  event: z.string(),
  summary: z.string(),
  description: z.string().nullable(),
  plugin: z.string(),
  parameters: z.record(z.string(), parameterDocSchema),
  emits: z.array(z.string()),
  errors: z.array(z.string()),
  available: z.boolean(),
});
const pluginRowSchema = z.object({
  name: z.string(),
  status: pluginStatusSchema,
  reason: z.string().nullable(),
  reason_code: reasonCodeSchema.nullable(),
  namespaces: z.array(z.string()),
  events: z.number().int(),
  depends_on: z.array(z.string()),
  started_at: z.number().nullable(),
  reloads: z.number().int(),
  details: z.record(z.string(), z.unknown()).optional(),
});
const healthResponse = z.looseObject({
  status: z.enum(['healthy', 'degraded', 'unhealthy', 'shutting_down']),
  healthy: z.boolean(),
  version: z.string(),
  pid: z.number().int(),
  uptime_s: z.number(),
  socket: z.string(),
  home: z.string(),
  plugins: z.record(
    z.string(),
    z.object({
      status: pluginStatusSchema,
      reason: z.string().nullable(),
      reason_code: reasonCodeSchema.nullable(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  ),
  connections: z.number().int(),
  subscribers: z.number().int(),
  events: z.object({ seq: z.number().int(), per_s: z.number() }),
  requests: z.number().int(),
  memory: z.object({
    rss_mb: z.number(),
    heap_mb: z.number(),
    heap_limit_mb: z.number(),
    idle_collections: z.number().int(),
  }),
});

export const KERNEL_NAMESPACES = ['system', 'monitor', 'plugin'];

/** Emitted-only kernel events, for the catalog. */
export const KERNEL_PUBLISHES: Record<string, string> = {
  'system:ready': 'The daemon has started every plugin and listens: `{pid, socket, plugins, startup_ms}`.',
  'system:shutdown_begin': 'Shutdown has begun; new requests answer SHUTTING_DOWN: `{reason, deadline}`.',
  'system:shutdown_phase': 'A shutdown phase finished: `{phase, unfinished?}`.',
  'system:shutdown_complete':
    'Plugins stopped and the final checkpoint was taken; the socket closes next: `{reason, unfinished, duration_ms}`.',
  'monitor:dropped':
    'Sent to a subscriber in place of events it was too slow to read (the oldest were dropped): `{count, first_seq, last_seq}`, the seqs of the events lost; delivered + dropped = every matching event.',
  'monitor:skipped':
    'Sent once a second to a subscription made with `max_rate`, when it skipped events over its rate (by choice, not loss): `{subscription, count, by_event: {name: n}, first_seq, last_seq}`; at most 200 names, the rest counted under `other`. Delivered + skipped = every matching event.',
  'plugin:status': 'A plugin became degraded or recovered: `{plugin, status, reason}`.',
  'plugin:reloaded': 'A plugin was reloaded: `{plugin, status, reason}`.',
  'plugin:error': "A plugin's listener threw: `{plugin, event, seq, message}`.",
};

export function eventDoc(k: Kernel, name: string, withSchema = false) {
  const r = k.router.route(name);
  if (!r || r.internal) return null;
  // The full JSON Schema is for tools that generate from it (the gateway's OpenAPI); the KSI shape stays lean.
  const extra = withSchema
    ? { schema: jsonSchemaOf(r.def.schema), default_timeout_ms: r.def.defaultTimeoutMs ?? null }
    : {};
  return {
    event: name,
    summary: r.def.summary,
    description: r.def.description ?? null,
    plugin: r.plugin,
    parameters: describeParameters(r.def.schema),
    emits: r.def.emits ?? [],
    errors: r.def.errors ?? [],
    available: r.unavailable === undefined,
    ...extra,
  };
}

export function kernelPlugin(k: Kernel) {
  return definePlugin({
    name: 'kernel',
    namespaces: KERNEL_NAMESPACES,
    events: {
      'system:ping': {
        summary: 'No-op round trip: answers {pong: true}. What every latency benchmark measures.',
        schema: z.object({}).passthrough(),
        response: z.object({ pong: z.literal(true) }),
        handler: () => PONG,
      },
      'system:health': {
        summary: 'Daemon health: status, uptime, plugins and their status, connections, event rate, memory.',
        schema: z.object({}).passthrough(),
        response: healthResponse,
        handler: () => k.health(),
      },
      'system:metrics': {
        summary:
          "Counters for monitoring: every request the router answered by event, origin and code with latency histograms, socket subscribers' dropped events, admission.",
        description:
          "requests: one row per event and origin (`client`: a socket client or a plugin's outside client such as the gateway's; `plugin`: a plugin's own nested request) with `count`, `codes` ({OK: n, <error code>: n}), `sum_s` and `buckets` (cumulative counts answered within each bound of `latency_buckets_s`, in seconds; the time from dispatch to answer, waiting for admission not included). Events no local route answers are counted as `other`. socket: `connections`, `requests`, `events_dropped` (events subscribers lost for not reading) and `dropped_notices` (the monitor:dropped frames that told them), `connections_refused`, `connections_cut_off`. admission: `rounds`, `admitted`, `plugin_clients` (outside clients of plugins with requests waiting or running). All counts since start.",
        schema: z.object({}).passthrough(),
        handler: () => k.metrics(),
      },
      'system:discover': {
        summary: 'Every event the daemon answers, grouped by namespace, with parameters (KSI shape).',
        schema: z.object({
          namespace: z.string().optional().register(z.globalRegistry, { description: 'Only this namespace' }),
          schemas: z.boolean().default(false).register(z.globalRegistry, {
            description:
              "Also give each event's data as a JSON Schema (`schema`) and its default timeout (`default_timeout_ms`)",
          }),
        }),
        response: z.object({ events: z.record(z.string(), z.array(eventDocSchema)), total: z.number().int() }),
        handler: ({ namespace, schemas }) => {
          const events: Record<string, unknown[]> = {};
          for (const r of k.router.allRoutes()) {
            if (r.internal) continue;
            const ns = r.event.split(':')[0];
            if (namespace && ns !== namespace) continue;
            (events[ns] ??= []).push(eventDoc(k, r.event, schemas));
          }
          for (const list of Object.values(events))
            (list as Array<{ event: string }>).sort((a, b) => byCodePoint(a.event, b.event));
          return { events, total: Object.values(events).reduce((n, l) => n + l.length, 0) };
        },
      },
      'system:help': {
        summary: 'Documentation of one event: summary, parameters, what it emits, its error codes.',
        schema: z.object({
          event: z.string().register(z.globalRegistry, { description: 'Event name, e.g. "completion:async"' }),
        }),
        errors: ['UNKNOWN_EVENT'],
        response: eventDocSchema,
        handler: ({ event }) => {
          const doc = eventDoc(k, event);
          if (!doc) throw k.router.unknownEvent(event);
          return doc;
        },
      },
      'system:shutdown': {
        summary:
          'Begin a coordinated shutdown (answered before it starts). Plugins stop within the deadline, a final checkpoint is taken.',
        schema: z.object({
          reason: z
            .string()
            .max(500)
            .optional()
            .register(z.globalRegistry, { description: 'Recorded in the log and in the shutdown events' }),
        }),
        emits: ['system:shutdown_begin', 'system:shutdown_complete'],
        response: z.object({ accepted: z.boolean(), already_shutting_down: z.boolean(), deadline_ms: z.number() }),
        handler: ({ reason }) => {
          const already = k.shuttingDown;
          setImmediate(() => void k.shutdown(reason ?? 'requested'));
          return { accepted: true, already_shutting_down: already, deadline_ms: k.config.daemon.shutdown_timeout_ms };
        },
      },
      'monitor:subscribe': {
        summary:
          'Subscribe this connection to events matching patterns; events arrive as {kind:"event", subscription}. Every matching event after the answered seq is delivered (or, with max_rate, delivered or counted as skipped).',
        schema: z.object({
          patterns: z
            .array(pattern)
            .min(1)
            .max(100)
            .register(z.globalRegistry, { description: 'Patterns: "ns:action", "ns:*", "ns:**" or "*"' }),
          max_rate: z.number().int().min(1).max(1_000_000).optional().register(z.globalRegistry, {
            description:
              'Deliver at most this many events per second (bursts up to the same number); the rest are not sent but counted, and reported once a second as monitor:skipped. Absent: every event',
          }),
        }),
        emits: ['monitor:skipped'],
        errors: ['CONFLICT', 'OVERLOADED'],
        response: z.object({
          subscription_id: z.string(),
          patterns: z.array(z.string()),
          seq: z.number().int(),
          max_rate: z.number().int().optional(),
        }),
        handler: ({ patterns, max_rate }, _, call) => {
          const conn = call.connectionId ? k.connections.get(call.connectionId) : undefined;
          if (!conn)
            throw new DaemonError(
              'CONFLICT',
              'monitor:subscribe needs a socket connection (plugins use ctx.subscribe)',
            );
          if (conn.subscriptions.size >= 100)
            throw new DaemonError('OVERLOADED', 'at most 100 subscriptions per connection');
          const sub = conn.addSubscription(patterns, max_rate);
          return {
            subscription_id: sub.id,
            patterns,
            seq: k.router.lastSeq,
            ...(max_rate === undefined ? {} : { max_rate }),
          };
        },
      },
      'monitor:unsubscribe': {
        summary: "End one of this connection's subscriptions.",
        schema: z.object({
          subscription_id: z.string().register(z.globalRegistry, { description: 'As returned by monitor:subscribe' }),
        }),
        errors: ['NOT_FOUND'],
        response: z.object({ unsubscribed: z.string() }),
        handler: ({ subscription_id }, _, call) => {
          const conn = call.connectionId ? k.connections.get(call.connectionId) : undefined;
          if (!conn || !conn.removeSubscription(subscription_id))
            throw new DaemonError('NOT_FOUND', `no subscription "${subscription_id}" on this connection`);
          return { unsubscribed: subscription_id };
        },
      },
      'monitor:events': {
        summary:
          'Recent events from the history ring (for late joiners), oldest first: {events, last_seq, oldest_seq, truncated}.',
        schema: z.object({
          patterns: z
            .array(pattern)
            .max(100)
            .optional()
            .register(z.globalRegistry, { description: 'Only events matching these patterns (default all)' }),
          since_seq: z
            .number()
            .int()
            .min(0)
            .optional()
            .register(z.globalRegistry, { description: 'Only events with seq greater than this' }),
          until_seq: z.number().int().min(0).optional().register(z.globalRegistry, {
            description:
              'Only events with seq up to this one (e.g. the seq monitor:subscribe answered: history up to it, the subscription after it)',
          }),
          limit: z
            .number()
            .int()
            .min(1)
            .max(10_000)
            .default(100)
            .register(z.globalRegistry, { description: 'At most this many (the newest)' }),
        }),
        response: z.object({
          events: z.array(emittedEventSchema),
          last_seq: z.number().int(),
          oldest_seq: z.number().int(),
          truncated: z.boolean(),
        }),
        handler: ({ patterns, since_seq, until_seq, limit }) => {
          const matches = patterns && patterns.length ? matchPatterns(patterns) : () => true;
          const match = (ev: EmittedEvent): boolean => matches(ev.event);
          const held = k.router.history.toArray();
          const all = held.filter(
            (ev) =>
              (since_seq === undefined || ev.seq > since_seq) &&
              (until_seq === undefined || ev.seq <= until_seq) &&
              match(ev),
          );
          const events = all.slice(-limit);
          // oldest_seq: where the history begins; a reader resuming from an older seq may have missed events.
          return {
            events,
            last_seq: k.router.lastSeq,
            oldest_seq: held.length ? held[0].seq : k.router.lastSeq + 1,
            truncated: all.length > events.length,
          };
        },
      },
      'plugin:list': {
        summary: 'Every discovered plugin with status ok|degraded|failed|stopped and the reason.',
        schema: z.object({}).passthrough(),
        response: z.object({ plugins: z.array(pluginRowSchema) }),
        handler: () => ({ plugins: k.host.list().map((p) => redactDeep(p)) }),
      },
      'plugin:reload': {
        summary:
          'Reload one plugin from disk, carrying its state across (snapshot → stop → re-import → restore → start).',
        schema: z.object({ name: z.string().register(z.globalRegistry, { description: 'Plugin name' }) }),
        errors: ['NOT_FOUND', 'CONFLICT'],
        defaultTimeoutMs: 60_000,
        response: z.object({
          plugin: z.string(),
          status: pluginStatusSchema,
          reason: z.string().nullable(),
          reason_code: reasonCodeSchema.nullable(),
          reloads: z.number().int(),
        }),
        handler: async ({ name }) => {
          const rec = await k.host.reload(name);
          return {
            plugin: name,
            status: rec.status,
            reason: rec.reason ?? null,
            reason_code: rec.reasonCode ?? null,
            reloads: rec.reloads,
          };
        },
      },
    },
  });
}

const PONG = Object.freeze({ pong: true });

/** Kernel-internal events for the checkpoint plugin; socket clients cannot call them. */
export function internalEvents(k: Kernel) {
  return definePlugin({
    name: 'kernel',
    namespaces: ['plugin'],
    events: {
      'plugin:snapshot': {
        summary: "Collect every stateful plugin's snapshot (internal).",
        schema: z.object({ only_dirty: z.boolean().default(false) }),
        response: z.object({
          states: z.record(z.string(), z.object({ version: z.number(), state: z.unknown() })),
          errors: z.record(z.string(), z.string()),
          dirty: z.boolean(),
        }),
        handler: ({ only_dirty }) => k.host.snapshotAll(only_dirty),
      },
      'plugin:restore': {
        summary: 'Hand each plugin its part of a checkpoint (internal).',
        schema: z.object({ states: z.record(z.string(), z.object({ version: z.number(), state: z.unknown() })) }),
        response: z.object({ restored: z.array(z.string()), skipped: z.record(z.string(), z.string()) }),
        handler: ({ states }) => k.host.restoreAll(states as Record<string, { version: number; state: unknown }>),
      },
      'plugin:full_state': {
        summary:
          'What each plugin declared for full checkpoints, and calls into their external-state hooks (internal).',
        schema: z.object({
          op: z.enum(['describe', 'freeze', 'thaw', 'capture', 'put_back']),
          plugins: z.array(z.string()).default([]),
          dir: z.string().optional(),
        }),
        handler: async ({ op, plugins, dir }) => {
          if (op === 'describe') return describeFullState(k.host, k.db);
          if (op === 'freeze') return { frozen: await freezeExternal(k.host) };
          if (op === 'thaw') return (thawExternal(k.host, plugins), { thawed: plugins });
          const [name] = plugins;
          if (!name || !dir) throw new DaemonError('INVALID_DATA', `${op} needs one plugin and a dir`);
          if (op === 'capture') return { files: await captureExternal(k.host, name, dir) };
          await putBackExternal(k.host, name, dir);
          return { put_back: name };
        },
      },
      'plugin:hold': {
        summary:
          'Stop plugins for a full restore, as shutdown stops them; their events answer UNAVAILABLE until resumed (internal).',
        schema: z.object({ plugins: z.array(z.string()), deadline: z.number(), reason: z.string() }),
        handler: ({ plugins, deadline, reason }) => k.host.hold(plugins, deadline, reason),
      },
      'plugin:resume': {
        summary: 'Start held plugins again from their tables and their part of a checkpoint (internal).',
        schema: z.object({
          plugins: z.array(z.string()),
          states: z.record(z.string(), z.object({ version: z.number(), state: z.unknown() })),
          carry: z.boolean().default(false),
        }),
        handler: ({ plugins, states, carry }) =>
          k.host.resume(plugins, states as Record<string, { version: number; state: unknown }>, carry),
      },
    },
  });
}
