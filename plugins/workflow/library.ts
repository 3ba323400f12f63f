/**
 * The workflow library: YAML definitions in `workflows/` (and any extra directories), re-read when
 * chokidar sees a change, so an edit is picked up without a restart. A file that does not parse or
 * fails the definition's shape is listed with the reason and never loaded. Whether its events and
 * profiles exist is checked when it is listed or started, against the daemon as it is then.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  isYamlFile,
  parseYamlText,
  prepareYamlFiles,
  watchYamlDirs,
  type YamlDirWatcher,
} from '../../daemon/plugin-api.js';
import type { Definition } from './definition.js';
import { checkDefinition, type Issue } from './validate.js';

export interface LibraryEntry {
  name: string;
  file: string;
  definition: Definition;
}

export interface LibraryChange {
  file: string;
  change: 'loaded' | 'removed' | 'invalid';
  name: string | null;
  error: string | null;
}

/** One line for a list of issues: the first, naming its step, and how many more. */
export function issueLine(issues: Issue[]): string {
  const i = issues[0]!;
  const where = i.step ? `step "${i.step}": ` : i.path.length ? `${i.path.join('.')}: ` : '';
  return `${where}${i.message}${issues.length > 1 ? ` (+${issues.length - 1} more)` : ''}`;
}

export class WorkflowLibrary {
  private readonly byFile = new Map<string, LibraryEntry>();
  private readonly invalidByFile = new Map<string, string>();
  private readonly texts = new Map<string, string>();
  private watcher: YamlDirWatcher | null = null;
  private closed = false;

  constructor(
    private readonly dirs: string[],
    private readonly onChange: (c: LibraryChange) => void = () => undefined,
  ) {}

  private files(): string[] {
    const out: string[] = [];
    for (const dir of this.dirs) {
      if (!fs.existsSync(dir)) continue;
      for (const f of fs.readdirSync(dir).sort()) if (isYamlFile(f)) out.push(path.join(dir, f));
    }
    return out;
  }

  async loadAll(): Promise<void> {
    const files = this.files();
    await prepareYamlFiles(files);
    for (const f of files) this.load(f, false);
  }

  load(file: string, notify = true): LibraryChange {
    let change: LibraryChange;
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return this.remove(file, notify);
      throw e;
    }
    this.texts.set(file, text);
    const had = this.byFile.get(file);
    try {
      const raw = parseYamlText(text) as Record<string, unknown> | null;
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
        throw new Error('the file is not a YAML mapping');
      const base = path.basename(file).replace(/\.ya?ml$/i, '');
      const r = checkDefinition({ ...raw, name: raw.name ?? base });
      if (!r.ok) throw new Error(issueLine(r.issues));
      this.byFile.set(file, { name: r.definition.name, file, definition: r.definition });
      this.invalidByFile.delete(file);
      change = { file, change: 'loaded', name: r.definition.name, error: null };
    } catch (e) {
      this.byFile.delete(file);
      const msg = e instanceof Error ? e.message.split('\n')[0]! : String(e);
      this.invalidByFile.set(file, msg);
      change = { file, change: 'invalid', name: had?.name ?? null, error: msg };
    }
    if (notify) this.onChange(change);
    return change;
  }

  private remove(file: string, notify: boolean): LibraryChange {
    const had = this.byFile.get(file);
    this.byFile.delete(file);
    this.invalidByFile.delete(file);
    this.texts.delete(file);
    const change: LibraryChange = { file, change: 'removed', name: had?.name ?? null, error: null };
    if (notify) this.onChange(change);
    return change;
  }

  /** The workflow of that name: a later directory wins, then the later file name. */
  get(name: string): LibraryEntry | undefined {
    let found: LibraryEntry | undefined;
    for (const f of this.files()) {
      const e = this.byFile.get(f);
      if (e && e.name === name) found = e;
    }
    return found ?? [...this.byFile.values()].find((e) => e.name === name);
  }

  list(): LibraryEntry[] {
    const byName = new Map<string, LibraryEntry>();
    for (const f of [...this.byFile.keys()].sort()) byName.set(this.byFile.get(f)!.name, this.byFile.get(f)!);
    return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  invalid(): Array<{ file: string; error: string }> {
    return [...this.invalidByFile].map(([file, error]) => ({ file, error })).sort((a, b) => (a.file < b.file ? -1 : 1));
  }

  /** Pick up edits without a restart (chokidar is loaded off the start path; the start does not wait). */
  async watch(): Promise<void> {
    this.watcher = await watchYamlDirs(
      this.dirs,
      { texts: this.texts, load: (f) => this.load(f, true), remove: (f) => this.remove(f, true) },
      () => this.closed,
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.watcher?.close();
    this.watcher = null;
  }
}
