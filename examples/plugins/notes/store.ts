/** The notes table: plain better-sqlite3 behind a small class, testable without the daemon. */
import type Database from 'better-sqlite3';

export interface Note {
  id: string;
  text: string;
  tags: string[];
  created_at: number;
}

interface Row {
  id: string;
  text: string;
  tags: string;
  created_at: number;
}

const toNote = (r: Row): Note => ({
  id: r.id,
  text: r.text,
  tags: JSON.parse(r.tags) as string[],
  created_at: r.created_at,
});

export class NoteStore {
  /** Version i+1 is migrations[i]; append, never edit one that shipped. Tables carry the plugin's name. */
  static readonly migrations = [
    `CREATE TABLE notes_notes (id TEXT PRIMARY KEY, text TEXT NOT NULL, tags TEXT NOT NULL, created_at REAL NOT NULL)`,
  ];

  constructor(private readonly db: Database.Database) {}

  add(n: Note): Note {
    this.db
      .prepare('INSERT INTO notes_notes (id, text, tags, created_at) VALUES (?, ?, ?, ?)')
      .run(n.id, n.text, JSON.stringify(n.tags), n.created_at);
    return n;
  }

  get(id: string): Note | null {
    const r = this.db.prepare('SELECT * FROM notes_notes WHERE id = ?').get(id) as Row | undefined;
    return r ? toNote(r) : null;
  }

  list(tag: string | undefined, limit: number): Note[] {
    const rows = this.db.prepare('SELECT * FROM notes_notes ORDER BY id DESC').all() as Row[];
    return rows
      .map(toNote)
      .filter((n) => tag === undefined || n.tags.includes(tag))
      .slice(0, limit);
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM notes_notes').get() as { n: number }).n;
  }
}
