/**
 * YAML parsing with the shipped files pre-parsed. A first YAML parse in a fresh process runs the
 * parser cold and costs ~15 ms for the 3 KB price table alone: most of it on every start, for files
 * that only change with a release. The bundled build (daemon/build.ts) embeds the parse of each
 * shipped YAML file keyed by its exact text, so a file whose text is still the shipped one costs a
 * lookup; any other text (a user's file, an edited shipped file) is parsed as usual.
 */
import { parse } from 'yaml';

declare const __AGENTD_PREPARSED_YAML__: Record<string, unknown> | undefined;

const preparsed: Record<string, unknown> = typeof __AGENTD_PREPARSED_YAML__ !== 'undefined' ? __AGENTD_PREPARSED_YAML__ : {};

/** YAML.parse(text), from the build's pre-parsed copy when the text is a shipped file's. */
export function parseYamlText(text: string): unknown {
  // A fresh copy each time: callers may keep and change what they get, as with a real parse.
  if (Object.hasOwn(preparsed, text)) return structuredClone(preparsed[text]);
  return parse(text);
}
