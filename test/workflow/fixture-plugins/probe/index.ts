/**
 * Test-only plugin: a side effect with an idempotency key, as a real service that takes one would
 * have. Every call is recorded (durably, before anything else), the effect is applied once per key,
 * and the answer for a key is always the value first applied. The crash suite reads the calls to
 * check that a step whose result was journaled is never called again.
 */
import { z } from 'zod';
import type Database from 'better-sqlite3';
import { definePlugin } from '../../../../daemon/plugin-api.js';

export default definePlugin({
  name: 'probe',
  namespaces: ['probe'],
  start(c): { db: Database.Database } {
    c.migrate([
      `CREATE TABLE probe_calls (seq INTEGER PRIMARY KEY, key TEXT NOT NULL, at INTEGER NOT NULL);
      CREATE TABLE probe_effects (key TEXT PRIMARY KEY, value TEXT NOT NULL, at INTEGER NOT NULL);`,
    ]);
    return { db: c.db };
  },
  events: {
    'probe:effect': {
      summary: 'Apply a side effect once per key (after delay_ms); answers the value applied for the key',
      schema: z.object({
        key: z.string().min(1).describe('Idempotency key'),
        value: z.unknown().describe('What to apply'),
        delay_ms: z.number().int().min(0).max(10_000).default(0).describe('Work time before the effect'),
      }),
      async handler({ key, value, delay_ms }, { db }) {
        db.prepare('INSERT INTO probe_calls (key, at) VALUES (?, ?)').run(key, Date.now());
        if (delay_ms) await new Promise((r) => setTimeout(r, delay_ms));
        db.prepare('INSERT OR IGNORE INTO probe_effects (key, value, at) VALUES (?, ?, ?)').run(
          key,
          JSON.stringify(value ?? null),
          Date.now(),
        );
        const row = db.prepare('SELECT value FROM probe_effects WHERE key = ?').get(key) as { value: string };
        return { value: JSON.parse(row.value) as unknown };
      },
    },
    'probe:calls': {
      summary: 'Every call and every applied effect',
      schema: z.object({}),
      handler(_d, { db }) {
        return {
          calls: db.prepare('SELECT key, at FROM probe_calls ORDER BY seq').all(),
          effects: db.prepare('SELECT key, at FROM probe_effects').all(),
        };
      },
    },
  },
});
