/**
 * Test-only stateful plugin: a key/value map that is snapshotted and restored. Its stop() changes
 * the state (counts the stop, as a real plugin hands over in-flight work), so a test can see that
 * the final checkpoint was taken after stop(). Its snapshot version comes from MEMO_VERSION.
 */
import { z } from 'zod';
import { defineEvent, definePlugin } from '../../../../daemon/plugin-api.js';

interface MemoState {
  entries: Record<string, unknown>;
  stops: number;
}

let entries = new Map<string, unknown>();
let started = false;
let stops = 0;
let restores = 0;
let restoredBeforeStart: boolean | null = null;
let snapshotDelayMs = 0;
let markDirty: () => void = () => undefined;

export default definePlugin({
  name: 'memo',
  version: Number(process.env.MEMO_VERSION ?? 1),
  namespaces: ['memo'],
  start(ctx) {
    markDirty = () => ctx.markDirty();
    started = true;
  },
  stop() {
    started = false;
    stops++;
  },
  async snapshot(): Promise<MemoState> {
    const state: MemoState = { entries: Object.fromEntries(entries), stops };
    if (snapshotDelayMs > 0) await new Promise((r) => setTimeout(r, snapshotDelayMs));
    return state;
  },
  restore(state: unknown) {
    restores++;
    if (restoredBeforeStart === null) restoredBeforeStart = !started;
    entries = new Map(Object.entries((state as MemoState).entries));
    stops = (state as MemoState).stops;
  },
  events: {
    'memo:put': defineEvent({
      summary: 'Set keys',
      schema: z.object({ values: z.record(z.string(), z.unknown()).describe('key → value') }),
      handler: ({ values }) => {
        for (const [k, v] of Object.entries(values)) entries.set(k, v);
        markDirty();
        return { size: entries.size };
      },
    }),
    'memo:fill': defineEvent({
      summary: 'Create n session-like records',
      schema: z.object({ count: z.number().int().min(1).max(1_000_000).describe('How many'), prefix: z.string().default('s').describe('Key prefix') }),
      handler: ({ count, prefix }) => {
        for (let i = 0; i < count; i++) {
          entries.set(`${prefix}${i}`, {
            session_id: `${prefix}${i}`, agent_id: `agent-${i % 97}`, model: 'claude-sonnet-4-5', created_at: 1764000000 + i,
            turns: i % 13, tokens: { input: 1000 + i, output: 200 + (i % 50) }, last: `message number ${i} of the conversation`,
          });
        }
        markDirty();
        return { size: entries.size };
      },
    }),
    'memo:dump': defineEvent({
      summary: 'Everything, and how the plugin was restored',
      schema: z.object({ keys_only: z.boolean().default(false).describe('Only the keys') }),
      handler: ({ keys_only }) => ({
        entries: keys_only ? undefined : Object.fromEntries(entries),
        keys: [...entries.keys()],
        size: entries.size,
        restores,
        stops,
        restored_before_start: restoredBeforeStart,
        started,
      }),
    }),
    'memo:slow_snapshot': defineEvent({
      summary: 'Make snapshot() take this long',
      schema: z.object({ ms: z.number().int().min(0).describe('Delay') }),
      handler: ({ ms }) => ((snapshotDelayMs = ms), { ms }),
    }),
  },
});
