/**
 * The bridge's configuration section and the NATS subjects derived from it. Subjects are the event
 * name with `:` turned into `.` under a fleet-wide prefix, so NATS wildcards line up with agentd
 * patterns (`ns:*` → `ns.*`, `ns:**` and `*` → `>`).
 */
import { z } from 'zod';
import { PATTERN_RE } from '../../client/protocol.js';

const NODE_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const NS_RE = /^[a-z][a-z0-9_]*$/;
const pattern = z.string().regex(PATTERN_RE, 'a pattern is "ns:action", "ns:*", "ns:**" or "*"');

/** An empty value (e.g. AGENTD_BRIDGE_URL="") means unset. */
const unsetIfEmpty = (v: unknown) => (v === '' || v === null ? undefined : v);

export const bridgeConfigSchema = z.object({
  url: z
    .preprocess(unsetIfEmpty, z.string().optional())
    .register(z.globalRegistry, { description: 'NATS server URL(s), comma separated; the bridge is off without one' }),
  node: z
    .preprocess(
      unsetIfEmpty,
      z.string().regex(NODE_RE, 'node names are lowercase letters, digits, "_" and "-"').optional(),
    )
    .register(z.globalRegistry, { description: "This daemon's name in the fleet" }),
  prefix: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default('agentd')
    .register(z.globalRegistry, { description: 'First token of every subject (one fleet per prefix)' }),
  publish: z
    .array(pattern)
    .default([])
    .register(z.globalRegistry, { description: 'Local events published to the fleet' }),
  subscribe: z
    .array(pattern)
    .default(['*'])
    .register(z.globalRegistry, { description: 'Remote events delivered to local subscribers' }),
  serve: z
    .array(z.string().regex(NS_RE))
    .default([])
    .register(z.globalRegistry, { description: 'Local namespaces served to the fleet (queue groups)' }),
  durable: z.array(pattern).default([]).register(z.globalRegistry, {
    description: 'Forwarded requests that go through JetStream (redelivered if a worker dies)',
  }),
  serve_max_inflight: z.coerce.number().int().min(1).max(100_000).default(1024).register(z.globalRegistry, {
    description: 'Requests from the fleet handled at once; beyond it they answer OVERLOADED',
  }),
  forward: z.coerce
    .boolean()
    .default(true)
    .register(z.globalRegistry, { description: 'Forward requests for namespaces no local plugin owns to the fleet' }),
  heartbeat_ms: z.coerce.number().int().min(100).max(60_000).default(2000),
  connect_timeout_ms: z.coerce.number().int().min(100).max(60_000).default(2000),
  ack_wait_ms: z.coerce
    .number()
    .int()
    .min(500)
    .max(3_600_000)
    .default(10_000)
    .register(z.globalRegistry, { description: 'A durable job whose worker went silent this long is redelivered' }),
  max_deliver: z.coerce.number().int().min(1).max(100).default(5),
  max_concurrent: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(8)
    .register(z.globalRegistry, { description: 'Durable jobs one worker runs at once' }),
  result_ttl_s: z.coerce
    .number()
    .int()
    .min(10)
    .max(7 * 86400)
    .default(3600),
});

export type BridgeConfig = z.infer<typeof bridgeConfigSchema>;

/** Kernel events are per daemon: never relayed (a peer's system:shutdown_begin is not ours). */
export const KERNEL_NS = new Set(['system', 'monitor', 'plugin']);

/** Kernel events a peer may ask of this daemon directly (read-only). */
export const DIRECT_KERNEL_EVENTS = new Set([
  'system:ping',
  'system:health',
  'system:discover',
  'system:help',
  'plugin:list',
  'bridge:status',
]);

export const isNodeName = (s: string): boolean => NODE_RE.test(s);

/** `ns:action` → `ns.action`; patterns: `*` → `>`, `ns:**` → `ns.>`, `ns:*` → `ns.*`. */
export function patternToSubject(p: string): string {
  if (p === '*') return '>';
  return p
    .replace(/:\*\*$/, ':>')
    .split(':')
    .join('.');
}

export function subjectToEvent(tokens: string[]): string {
  return tokens.join(':');
}

export class Subjects {
  constructor(
    readonly prefix: string,
    readonly node: string,
  ) {}
  event(name: string): string {
    return `${this.prefix}.ev.${name.split(':').join('.')}`;
  }
  eventPattern(p: string): string {
    return `${this.prefix}.ev.${patternToSubject(p)}`;
  }
  /** Requests for a namespace, shared by its servers through a queue group. */
  request(event: string): string {
    return `${this.prefix}.req.${event.split(':').join('.')}`;
  }
  serve(ns: string): string {
    return `${this.prefix}.req.${ns}.>`;
  }
  queue(ns: string): string {
    return `${this.prefix}-${ns}`;
  }
  /** Requests addressed to one node. */
  direct(node: string, event: string): string {
    return `${this.prefix}.node.${node}.${event.split(':').join('.')}`;
  }
  directAll(): string {
    return `${this.prefix}.node.${this.node}.>`;
  }
  heartbeat(node = this.node): string {
    return `${this.prefix}.hb.${node}`;
  }
  heartbeats(): string {
    return `${this.prefix}.hb.*`;
  }
  hello(): string {
    return `${this.prefix}.hello`;
  }
  // JetStream
  get workStream(): string {
    return `${this.prefix.toUpperCase().replace(/-/g, '_')}_WORK`;
  }
  get resultStream(): string {
    return `${this.prefix.toUpperCase().replace(/-/g, '_')}_RESULTS`;
  }
  work(event: string): string {
    return `${this.prefix}.work.${event.split(':').join('.')}`;
  }
  workNs(ns: string): string {
    return `${this.prefix}.work.${ns}.>`;
  }
  workConsumer(ns: string): string {
    return `work_${ns}`;
  }
  result(node: string, jobId: string): string {
    return `${this.prefix}.result.${node}.${jobId}`;
  }
  results(node = this.node): string {
    return `${this.prefix}.result.${node}.>`;
  }
  resultConsumer(node = this.node): string {
    return `results_${node.replace(/-/g, '_')}`;
  }
}
