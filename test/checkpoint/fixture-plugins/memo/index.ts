/**
 * Test-only stateful plugin: a key/value map that is snapshotted and restored. Its stop() changes
 * the state (counts the stop, as a real plugin hands over in-flight work), so a test can see that
 * the final checkpoint was taken after stop(). Its snapshot version comes from MEMO_VERSION.
 */
import { z } from 'zod';
import { definePlugin } from '../../../../daemon/plugin-api.js';

interface MemoState {
  entries: Record<string, unknown>;
  stops: number;
}

export default definePlugin({
  name: 'memo',
  version: Number(process.env.MEMO_VERSION ?? 1),
  namespaces: ['memo'],
  start(ctx) {
    const from = ctx.restored as MemoState | undefined;
    return {
      entries: new Map(Object.entries(from?.entries ?? {})),
      started: true,
      stops: from?.stops ?? 0,
      restores: from ? 1 : 0,
      // Handed its state as it started, it serves restored state from its first request.
      restoredBeforeStart: from ? true : null,
      snapshotDelayMs: 0,
      // Snapshots begun, so a test can wait for a slow one to be under way instead of sleeping.
      snapshotsBegun: 0,
      markDirty: () => ctx.markDirty(),
    };
  },
  stop(memo) {
    memo.started = false;
    memo.stops++;
  },
  async snapshot(memo): Promise<MemoState> {
    memo.snapshotsBegun++;
    const state: MemoState = { entries: Object.fromEntries(memo.entries), stops: memo.stops };
    if (memo.snapshotDelayMs > 0) await new Promise((r) => setTimeout(r, memo.snapshotDelayMs));
    return state;
  },
  restore(memo, state) {
    memo.restores++;
    memo.restoredBeforeStart ??= !memo.started;
    memo.entries = new Map(Object.entries((state as MemoState).entries));
    memo.stops = (state as MemoState).stops;
  },
  events: {
    'memo:put': {
      summary: 'Set keys',
      schema: z.object({ values: z.record(z.string(), z.unknown()).describe('key → value') }),
      handler: ({ values }, memo) => {
        for (const [k, v] of Object.entries(values)) memo.entries.set(k, v);
        memo.markDirty();
        return { size: memo.entries.size };
      },
    },
    'memo:fill': {
      summary: 'Create n session-like records',
      schema: z.object({
        count: z.number().int().min(1).max(1_000_000).describe('How many'),
        prefix: z.string().default('s').describe('Key prefix'),
      }),
      handler: ({ count, prefix }, memo) => {
        for (let i = 0; i < count; i++) {
          memo.entries.set(`${prefix}${i}`, {
            session_id: `${prefix}${i}`,
            agent_id: `agent-${i % 97}`,
            model: 'claude-sonnet-4-5',
            created_at: 1764000000 + i,
            turns: i % 13,
            tokens: { input: 1000 + i, output: 200 + (i % 50) },
            last: `message number ${i} of the conversation`,
          });
        }
        memo.markDirty();
        return { size: memo.entries.size };
      },
    },
    'memo:dump': {
      summary: 'Everything, and how the plugin was restored',
      schema: z.object({ keys_only: z.boolean().default(false).describe('Only the keys') }),
      handler: ({ keys_only }, memo) => ({
        entries: keys_only ? undefined : Object.fromEntries(memo.entries),
        keys: [...memo.entries.keys()],
        size: memo.entries.size,
        restores: memo.restores,
        stops: memo.stops,
        restored_before_start: memo.restoredBeforeStart,
        started: memo.started,
        snapshots_begun: memo.snapshotsBegun,
      }),
    },
    'memo:slow_snapshot': {
      summary: 'Make snapshot() take this long',
      schema: z.object({ ms: z.number().int().min(0).describe('Delay') }),
      handler: ({ ms }, memo) => ((memo.snapshotDelayMs = ms), { ms }),
    },
  },
});
