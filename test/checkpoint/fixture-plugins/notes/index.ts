/**
 * Test-only plugin that keeps its state in a table of agentd.db and declares it for full checkpoints,
 * as any third-party plugin would. Its stop() never finishes when NOTES_HANG_STOP=1 (a plugin a
 * restore cannot stop in time).
 */
import { z } from 'zod';
import { definePlugin } from '../../../../daemon/plugin-api.js';

export default definePlugin({
  name: 'notes',
  namespaces: ['notes'],
  start(ctx) {
    ctx.migrate(['CREATE TABLE notes_items (id TEXT PRIMARY KEY, text TEXT NOT NULL)']);
    return { db: ctx.db };
  },
  async stop() {
    if (process.env.NOTES_HANG_STOP === '1') await new Promise(() => undefined);
  },
  fullState: {
    tables: ['notes_*'],
    entities: { notes: { table: 'notes_items', key: 'id' } },
  },
  events: {
    'notes:put': {
      summary: 'Write a note',
      schema: z.object({ id: z.string().describe('Id'), text: z.string().describe('Text') }),
      handler: ({ id, text }, notes) => {
        notes.db.prepare('INSERT OR REPLACE INTO notes_items (id, text) VALUES (?, ?)').run(id, text);
        return { id };
      },
    },
    'notes:list': {
      summary: 'Every note',
      schema: z.object({}),
      handler: (_d, notes) => ({ notes: notes.db.prepare('SELECT id, text FROM notes_items ORDER BY id').all() }),
    },
  },
});
