/**
 * How each language's code is run. The code is written to a file (not passed as an argument) so its
 * size is not bounded by ARG_MAX and tracebacks name a real file.
 */
export const LANGUAGES = {
  python: { file: 'main.py', argv: (f: string) => ['python3', '-u', f] },
  bash: { file: 'main.sh', argv: (f: string) => ['bash', f] },
  node: { file: 'main.js', argv: (f: string) => ['node', f] },
  r: { file: 'main.R', argv: (f: string) => ['Rscript', '--vanilla', f] },
} as const;

export type Language = keyof typeof LANGUAGES;
export const LANGUAGE_NAMES = Object.keys(LANGUAGES) as [Language, ...Language[]];

/** Prefix of the code file: on the noexec /tmp tmpfs (interpreters read it; it is never executed itself). */
export const CODE_DIR = '/tmp/.agentd';
export const WORKSPACE = '/workspace';
