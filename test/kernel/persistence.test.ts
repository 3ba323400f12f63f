/** Per-plugin migrations of the shared database. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, openDatabase } from '../../daemon/persistence.js';

const dirs: string[] = [];
const fresh = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-mig-'));
  dirs.push(d);
  return openDatabase(d);
};
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const tables = (db: ReturnType<typeof fresh>): string[] =>
  (
    db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'p_%' ORDER BY name").all() as Array<{
      name: string;
    }>
  ).map((r) => r.name);

describe('migrate', () => {
  it('applies each pending migration once, also across restarts, and only the new ones later', () => {
    const db = fresh();
    const steps = ['CREATE TABLE p_a (x)', (d: typeof db) => d.exec('CREATE TABLE p_b (y)')];
    expect(migrate(db, 'p', steps)).toBe(2);
    expect(migrate(db, 'p', steps)).toBe(2);
    expect(tables(db)).toEqual(['p_a', 'p_b']);
    expect(migrate(db, 'p', [...steps, 'CREATE TABLE p_c (z)'])).toBe(3);
    expect(tables(db)).toEqual(['p_a', 'p_b', 'p_c']);
    expect(db.prepare("SELECT version FROM kernel_migrations WHERE plugin = 'p' ORDER BY version").all()).toEqual([
      { version: 1 },
      { version: 2 },
      { version: 3 },
    ]);
  });

  it('leaves the schema as it was when one pending migration fails, naming it', () => {
    const db = fresh();
    expect(() => migrate(db, 'p', ['CREATE TABLE p_a (x)', 'CREATE TABLE p_b (y', 'CREATE TABLE p_c (z)'])).toThrow(
      /p migration 2 failed/,
    );
    expect(tables(db)).toEqual([]);
    expect(db.prepare("SELECT COUNT(*) AS n FROM kernel_migrations WHERE plugin = 'p'").get()).toEqual({ n: 0 });
  });

  it('refuses a database whose schema is newer than the code', () => {
    const db = fresh();
    migrate(db, 'p', ['CREATE TABLE p_a (x)', 'CREATE TABLE p_b (y)']);
    expect(() => migrate(db, 'p', ['CREATE TABLE p_a (x)'])).toThrow(
      /schema version 2, newer than this code knows \(1\)/,
    );
  });
});
