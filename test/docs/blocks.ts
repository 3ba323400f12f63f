/**
 * The runnable blocks of the documentation: fenced code blocks whose info string says `runnable`
 * (docs/writing-docs.md), and the expected output of `console` blocks.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface Block {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  code: string;
  /** `daemon`: start a daemon first unless one runs. */
  daemon: boolean;
  needs: string[];
  timeoutS: number;
}

const FENCE = /^(`{3,}|~{3,})\s*([^\s`]*)(.*)$/;

/** Every block of a markdown file whose info string has the word `runnable`. */
export function runnableBlocks(file: string): Block[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    const words = open[3]!.trim().split(/\s+/).filter(Boolean);
    let j = i + 1;
    while (j < lines.length && !lines[j]!.startsWith(fence)) j++;
    if (words.includes('runnable')) {
      const opt = (name: string): string | undefined =>
        words.find((w) => w.startsWith(`${name}=`))?.slice(name.length + 1);
      out.push({
        file,
        line: i + 1,
        lang: open[2]!,
        code: lines.slice(i + 1, j).join('\n'),
        daemon: words.includes('daemon'),
        needs: words.filter((w) => w.startsWith('needs=')).map((w) => w.slice(6)),
        timeoutS: Number(opt('timeout') ?? 120),
      });
    }
    i = j;
  }
  return out;
}

export interface ConsoleStep {
  command: string;
  expected: string[];
  exit: number;
}

/** A command goes on while it ends with a backslash or leaves a single or double quote open. */
function continues(text: string): boolean {
  if (text.endsWith('\\')) return true;
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === '\\' && quote === '"') i++;
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === '\\') i++;
  }
  return quote !== null;
}

/** `$ command` lines with the output expected under each, and `[exit N]`. */
export function consoleSteps(code: string): ConsoleStep[] {
  const lines = code.split('\n');
  const steps: ConsoleStep[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (!l.startsWith('$ ')) {
      if (steps.length === 0 && l.trim() !== '')
        throw new Error(`console block: output before the first "$ " command: ${l}`);
      if (steps.length) steps[steps.length - 1]!.expected.push(l);
      continue;
    }
    let command = l.slice(2);
    while (continues(command) && i + 1 < lines.length) command += '\n' + lines[++i];
    steps.push({ command, expected: [], exit: 0 });
  }
  for (const s of steps) {
    while (s.expected.length && s.expected[s.expected.length - 1]!.trim() === '') s.expected.pop();
    const last = s.expected[s.expected.length - 1];
    const m = last !== undefined ? /^\[exit (\d+)\]$/.exec(last.trim()) : null;
    if (m) {
      s.exit = Number(m[1]);
      s.expected.pop();
    }
  }
  return steps;
}

const ELLIPSIS = /…|\.\.\./;
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** One expected line: literal, with `…` (or `...`) matching any text. */
function lineMatches(expected: string, actual: string): boolean {
  const parts = expected.trimEnd().split(ELLIPSIS).map(escape);
  return new RegExp(`^${parts.join('.*')}$`).test(actual.trimEnd());
}

/** The expected lines against the output; a line that is only `…` matches any number of lines. */
export function outputMatches(expected: string[], output: string): boolean {
  const actual = output.split('\n').map((l) => l.trimEnd());
  while (actual.length && actual[actual.length - 1] === '') actual.pop();
  const memo = new Map<string, boolean>();
  const m = (i: number, j: number): boolean => {
    const key = `${i},${j}`;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    let r: boolean;
    if (i === expected.length) r = j === actual.length;
    else if (/^\s*(…|\.\.\.)\s*$/.test(expected[i]!)) {
      r = false;
      for (let k = j; k <= actual.length && !r; k++) r = m(i + 1, k);
    } else r = j < actual.length && lineMatches(expected[i]!, actual[j]!) && m(i + 1, j + 1);
    memo.set(key, r);
    return r;
  };
  return m(0, 0);
}

/** README.md and every page of docs/, in a stable order. */
export function docPages(root: string): string[] {
  const docs = fs.existsSync(path.join(root, 'docs'))
    ? fs
        .readdirSync(path.join(root, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .sort()
        .map((f) => path.join(root, 'docs', f))
    : [];
  return [path.join(root, 'README.md'), ...docs];
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

/** Relative links of a markdown file whose file or heading anchor does not exist. */
export function brokenLinks(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
  const broken: string[] = [];
  for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    const link = m[1]!;
    if (/^[a-z]+:/.test(link)) continue;
    const [target, anchor] = link.split('#') as [string, string | undefined];
    const to = target ? path.resolve(path.dirname(file), target) : file;
    if (!fs.existsSync(to)) {
      broken.push(link);
      continue;
    }
    if (anchor && to.endsWith('.md')) {
      const headings = [
        ...fs
          .readFileSync(to, 'utf8')
          .replace(/```[\s\S]*?```/g, '')
          .matchAll(/^#+ (.*)$/gm),
      ].map((h) => anchorOf(h[1]!));
      if (!headings.includes(anchor)) broken.push(link);
    }
  }
  return broken;
}
