/**
 * Which daemon events `daemon-control mcp` offers as MCP tools, and how: `<ns>_<action>` named, with
 * the same JSON Schema the catalog documents as input. `mcp.expose` lists namespaces, events or
 * `ns:*`; the events that stop or reload the daemon are offered only when named exactly, and the
 * ones that only make sense on a socket (subscriptions) or that would let a tool call escape the
 * list (the mcp plugin's own proxy) never.
 */

/** Offered only when `mcp.expose` names them exactly. */
export const EXACT_ONLY = new Set(['system:shutdown', 'plugin:reload']);

/** Never tools: they need a connection of their own, or they would reach past `mcp.expose`. */
export const NEVER = new Set(['monitor:subscribe', 'monitor:unsubscribe', 'mcp:invoke', 'mcp:abort', 'mcp:exposed']);

export const toolNameOf = (event: string): string => event.replace(/:/g, '_');

/** Whether `event` is chosen by the `expose` entries. */
export function exposed(event: string, expose: readonly string[]): boolean {
  if (NEVER.has(event)) return false;
  if (EXACT_ONLY.has(event)) return expose.includes(event);
  const ns = event.slice(0, event.indexOf(':'));
  return expose.some((e) => e === event || e === ns || e === `${ns}:*`);
}

export interface EventDoc {
  event: string;
  summary: string;
  description?: string | null;
  /** The event's data as JSON Schema (`system:discover {schemas: true}`). */
  schema?: Record<string, unknown>;
  default_timeout_ms?: number | null;
  available?: boolean;
}

export interface ExposedTool {
  name: string;
  event: string;
  description: string;
  input_schema: Record<string, unknown>;
  default_timeout_ms: number | null;
}

/** MCP tools for the events `system:discover {schemas: true}` listed, in name order. */
export function toolsFor(events: Record<string, EventDoc[]>, expose: readonly string[]): ExposedTool[] {
  const out: ExposedTool[] = [];
  for (const list of Object.values(events)) {
    for (const d of list) {
      if (!exposed(d.event, expose)) continue;
      const { $schema: _drop, ...schema } = d.schema ?? {};
      out.push({
        name: toolNameOf(d.event),
        event: d.event,
        description: [d.summary, d.description].filter(Boolean).join('\n\n'),
        // MCP requires an object schema; every event's data is an object.
        input_schema: schema.type === 'object' ? schema : { type: 'object', ...schema },
        default_timeout_ms: d.default_timeout_ms ?? null,
      });
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
