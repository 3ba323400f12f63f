/**
 * An upper bound on a request's input tokens without asking the API. A BPE token covers at least one
 * byte of text, so the UTF-8 size of the JSON of system, messages and tools (which only adds quotes,
 * keys and punctuation) plus a per-message allowance for role markers is never below the real count.
 * Images are the exception a byte count would overstate hugely, not understate, so the bound holds.
 */
import type { ProviderRequest } from './providers/types.js';

const PER_MESSAGE = 8;
const PER_REQUEST = 64;

export function inputTokenBound(
  req: Pick<ProviderRequest, 'system' | 'messages' | 'tools' | 'tool_choice' | 'thinking'>,
): number {
  return inputShape(req).bound;
}

/**
 * The JSON size of each message, and whether it asks for caching, by message object. A session's
 * history is the same message objects call after call (the journal's cache keeps them; nothing changes
 * a stored message), so each call serialises only its new messages instead of the whole conversation.
 */
const sizes = new WeakMap<object, { bytes: number; cache: boolean }>();

function sizeOf(message: unknown): { bytes: number; cache: boolean } {
  const keyable = typeof message === 'object' && message !== null;
  let s = keyable ? sizes.get(message) : undefined;
  if (!s) {
    const text = JSON.stringify(message) ?? 'null';
    s = { bytes: Buffer.byteLength(text), cache: text.includes('"cache_control"') };
    if (keyable) sizes.set(message, s);
  }
  return s;
}

/** The input bound and the prompt-cache TTL together, serialising each part at most once. */
export function inputShape(req: Pick<ProviderRequest, 'system' | 'messages' | 'tools' | 'tool_choice' | 'thinking'>): {
  bound: number;
  cacheTtl: 'none' | '5m' | '1h';
} {
  // The messages array's JSON is its items' JSON, comma-separated, in brackets: the same byte count.
  let bytes = 2 + Math.max(0, req.messages.length - 1);
  let cache = false;
  for (const m of req.messages) {
    const s = sizeOf(m);
    bytes += s.bytes;
    cache ||= s.cache;
  }
  for (const part of [req.system, req.tools, req.tool_choice]) {
    if (part === undefined) continue;
    const text = typeof part === 'string' ? part : JSON.stringify(part);
    bytes += Buffer.byteLength(text);
    if (typeof part !== 'string') cache ||= text.includes('"cache_control"');
  }
  // Most requests ask for no caching: a substring search of the JSON already made spares walking the tree.
  return { bound: bytes + PER_MESSAGE * req.messages.length + PER_REQUEST, cacheTtl: cache ? cacheTtlOf(req) : 'none' };
}

/** The prompt-cache TTL a request asks for anywhere (cache writes cost more than plain input). */
export function cacheTtlOf(req: Pick<ProviderRequest, 'system' | 'messages' | 'tools'>): 'none' | '5m' | '1h' {
  let ttl: 'none' | '5m' | '1h' = 'none';
  const visit = (v: unknown): void => {
    if (ttl === '1h' || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) return v.forEach(visit);
    const o = v as Record<string, unknown>;
    const cc = o.cache_control as { ttl?: string } | undefined;
    if (cc && typeof cc === 'object') ttl = cc.ttl === '1h' ? '1h' : '5m';
    for (const x of Object.values(o)) visit(x);
  };
  visit([req.system, req.messages, req.tools]);
  return ttl;
}
