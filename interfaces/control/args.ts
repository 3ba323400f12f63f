/**
 * Strict argument parsing for daemon-control's commands, on `node:util` parseArgs: an unknown
 * option, a missing value or an extra argument is a usage error with one line that names it, never
 * silently ignored (a script that typed `--jsno` must not believe it got JSON).
 */
import { parseArgs } from 'node:util';
import { closest } from 'fastest-levenshtein';

export class UsageError extends Error {}

export interface OptionSpec {
  type: 'boolean' | 'string';
  short?: string;
}

export interface CommandSpec {
  /** How the command is written in messages, e.g. `emit <event> [json]`. */
  synopsis: string;
  options?: Record<string, OptionSpec>;
  /** Names of the positional arguments, in order; a name ending in `?` is optional, `...` takes the rest. */
  positionals?: string[];
}

export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

function describeOptions(spec: CommandSpec): string {
  const names = Object.keys(spec.options ?? {});
  return names.length
    ? `${spec.synopsis.split(' ')[0]} takes ${names.map((n) => `--${n}`).join(', ')}`
    : `${spec.synopsis.split(' ')[0]} takes no options`;
}

/** Parse `args` for one command; throws UsageError with a one-line message. */
export function parseCommand(spec: CommandSpec, args: string[]): ParsedArgs {
  const options = spec.options ?? {};
  const { tokens } = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  const values: Record<string, string | boolean | undefined> = {};
  const positionals: string[] = [];
  for (const t of tokens) {
    if (t.kind === 'option-terminator') continue;
    if (t.kind === 'positional') {
      positionals.push(t.value);
      continue;
    }
    const opt = options[t.name];
    if (!opt) {
      const names = Object.keys(options);
      const near = names.length ? closest(t.name, names) : undefined;
      const hint = near && near.length > 0 ? `did you mean --${near}?` : describeOptions(spec);
      throw new UsageError(`unknown option ${t.rawName} (${hint})`);
    }
    if (opt.type === 'string' && t.value === undefined)
      throw new UsageError(`option ${t.rawName} needs a value (${spec.synopsis})`);
    if (opt.type === 'boolean' && t.value !== undefined) throw new UsageError(`option ${t.rawName} takes no value`);
    values[t.name] = opt.type === 'boolean' ? true : t.value;
  }
  const names = spec.positionals ?? [];
  const rest = names.some((n) => n.endsWith('...'));
  const required = names.filter((n) => !n.endsWith('?') && !n.endsWith('...')).length;
  if (positionals.length < required)
    throw new UsageError(
      `${spec.synopsis.split(' ')[0]} needs ${names[positionals.length]!.replace(/\?$/, '')} (${spec.synopsis})`,
    );
  if (!rest && positionals.length > names.length) {
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[names.length])} (${spec.synopsis})`);
  }
  return { values, positionals };
}

/** A positive number of seconds from an option, or a usage error naming the option. */
export function seconds(value: string | boolean | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (typeof value !== 'string' || !Number.isFinite(n) || n <= 0)
    throw new UsageError(`--${name} takes a number of seconds, not ${JSON.stringify(value)}`);
  return n;
}
