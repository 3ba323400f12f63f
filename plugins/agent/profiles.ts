/**
 * Profiles: YAML files naming model, system prompt, tools, limits and budget. Loaded from the
 * configured directories, re-read when chokidar sees a change. An invalid file is reported (kept in
 * `invalid` with the reason, and through `onChange`) and never replaces or breaks the others.
 */
import fs from 'node:fs';
import path from 'node:path';
import { profileFileSchema, type ProfileFile } from './schemas.js';
import {
  byCodePoint,
  isYamlFile,
  parseYamlText,
  prepareYamlFiles,
  watchYamlDirs,
  type YamlDirWatcher,
} from '../../daemon/plugin-api.js';
import { formatIssues } from '../../client/issues.js';

export interface Profile extends ProfileFile {
  name: string;
  file: string;
}

export interface ProfileChange {
  file: string;
  change: 'loaded' | 'removed' | 'invalid';
  name: string | null;
  error: string | null;
}

export class ProfileStore {
  /** By file, so a file that turns invalid or disappears drops exactly its own profile. */
  private readonly byFile = new Map<string, Profile>();
  private readonly invalidByFile = new Map<string, string>();
  private watcher: YamlDirWatcher | null = null;
  /** Set by close(): a watcher whose import was still on its way is then never created. */
  private closed = false;

  constructor(
    private readonly dirs: string[],
    private readonly onChange: (c: ProfileChange) => void = () => undefined,
  ) {}

  /** Each file's text as last read, so a catch-up re-read reports only real changes. */
  private readonly texts = new Map<string, string>();

  /** Load every profile file; the YAML parser is loaded first only if a file is not a shipped one. */
  async loadAll(): Promise<void> {
    const files: string[] = [];
    for (const dir of this.dirs) {
      if (!fs.existsSync(dir)) continue;
      for (const f of fs.readdirSync(dir).sort()) if (isYamlFile(f)) files.push(path.join(dir, f));
    }
    await prepareYamlFiles(files);
    for (const f of files) this.loadFile(f, false);
  }

  /** Parse one file; returns what happened. */
  loadFile(file: string, notify = true): ProfileChange {
    let change: ProfileChange;
    try {
      const text = fs.readFileSync(file, 'utf8');
      this.texts.set(file, text);
      const raw: unknown = parseYamlText(text);
      const parsed = profileFileSchema.safeParse(raw ?? {});
      if (!parsed.success) {
        throw new Error(formatIssues(parsed.error.issues, { root: '(file)', max: 1 }));
      }
      const name = parsed.data.name ?? path.basename(file).replace(/\.ya?ml$/i, '');
      if (!/^[a-z][a-z0-9_-]{0,63}$/.test(name)) throw new Error(`name "${name}": lowercase letters, digits, _ and -`);
      this.byFile.set(file, { ...parsed.data, name, file });
      this.invalidByFile.delete(file);
      change = { file, change: 'loaded', name, error: null };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return this.remove(file, notify);
      const had = this.byFile.get(file);
      this.byFile.delete(file);
      const msg = e instanceof Error ? e.message.split('\n')[0]! : String(e);
      this.invalidByFile.set(file, msg);
      change = { file, change: 'invalid', name: had?.name ?? null, error: msg };
    }
    if (notify) this.onChange(change);
    return change;
  }

  private remove(file: string, notify: boolean): ProfileChange {
    this.texts.delete(file);
    const had = this.byFile.get(file);
    this.byFile.delete(file);
    this.invalidByFile.delete(file);
    const change: ProfileChange = { file, change: 'removed', name: had?.name ?? null, error: null };
    if (notify) this.onChange(change);
    return change;
  }

  /** The profile of that name; a later directory wins, then the later file name. */
  get(name: string): Profile | undefined {
    let found: Profile | undefined;
    for (const p of this.ordered()) if (p.name === name) found = p;
    return found;
  }

  list(): Profile[] {
    const byName = new Map<string, Profile>();
    for (const p of this.ordered()) byName.set(p.name, p);
    return [...byName.values()].sort((a, b) => byCodePoint(a.name, b.name));
  }

  invalid(): Array<{ file: string; error: string }> {
    return [...this.invalidByFile]
      .map(([file, error]) => ({ file, error }))
      .sort((a, b) => byCodePoint(a.file, b.file));
  }

  private ordered(): Profile[] {
    const rank = (f: string): number => this.dirs.findIndex((d) => f.startsWith(d + path.sep));
    return [...this.byFile.values()].sort((a, b) => rank(a.file) - rank(b.file) || byCodePoint(a.file, b.file));
  }

  /** Pick up edits without a restart (chokidar is loaded off the start path; the start does not wait). */
  async watch(): Promise<void> {
    this.watcher = await watchYamlDirs(
      this.dirs,
      { texts: this.texts, load: (f) => this.loadFile(f, true), remove: (f) => this.remove(f, true) },
      () => this.closed,
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.watcher?.close();
    this.watcher = null;
  }
}
