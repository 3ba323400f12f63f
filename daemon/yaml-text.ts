/**
 * YAML parsing with the shipped files pre-parsed, and the parser loaded only when a text needs it.
 *
 * A first YAML parse in a fresh process runs the parser cold (~15 ms for the 3 KB price table), and
 * loading the parser costs ~10 ms more: most of a daemon's starts paid both for files that only change
 * with a release. The bundled build (daemon/build.ts) embeds the parse of each shipped YAML file keyed
 * by its exact text, so a file whose text is still the shipped one costs a lookup; any other text (a
 * user's agentd.yaml or price file, an edited shipped file) is parsed as usual. Async start paths call
 * `prepareYaml` with the texts they are about to parse, which loads the parser (a chunk of its own in
 * the build) only when one of them needs it; `parseYamlText` itself stays synchronous.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';

type Yaml = { parse: (text: string) => unknown };

declare const __AGENTD_PREPARSED_YAML__: Record<string, unknown> | undefined;

const preparsed: Record<string, unknown> =
  typeof __AGENTD_PREPARSED_YAML__ !== 'undefined' ? __AGENTD_PREPARSED_YAML__ : {};

let yaml: Yaml | null = null;

/** Text that parses without the parser: a shipped file's, or nothing but whitespace (null). */
function needsNoParser(text: string): boolean {
  return Object.hasOwn(preparsed, text) || text.trim() === '';
}

/** Load the parser (once). */
export async function loadYamlParser(): Promise<void> {
  // Its default export: a bundled CommonJS module has no named ones.
  yaml ??= (await import('yaml')).default as Yaml;
}

/** Load the parser now if any of these texts will need it. */
export async function prepareYaml(texts: Iterable<string>): Promise<void> {
  if (yaml) return;
  for (const t of texts) if (!needsNoParser(t)) return loadYamlParser();
}

/** prepareYaml for the texts of these files (one that cannot be read is left to its reader to report). */
export function prepareYamlFiles(files: Iterable<string>): Promise<void> {
  const texts: string[] = [];
  for (const f of files) {
    try {
      texts.push(fs.readFileSync(f, 'utf8'));
    } catch {
      // reported where the file is read for use
    }
  }
  return prepareYaml(texts);
}

/** YAML.parse(text), from the build's pre-parsed copy when the text is a shipped file's. */
export function parseYamlText(text: string): unknown {
  // A fresh copy each time: callers may keep and change what they get, as with a real parse.
  if (Object.hasOwn(preparsed, text)) return structuredClone(preparsed[text]);
  if (text.trim() === '') return null;
  // Not prepared (a synchronous caller, such as a unit test): Node's own loader fetches it.
  yaml ??= createRequire(import.meta.url)('yaml') as Yaml;
  return yaml.parse(text);
}
