/** The documentation runner's parsing and matching, on their own. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { anchorOf, consoleSteps, outputMatches, runnableBlocks } from './blocks.js';

describe('runnable blocks', () => {
  it('are the fences whose info string says runnable, with their options', () => {
    const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-blocks-')), 'p.md');
    fs.writeFileSync(
      f,
      [
        '# t',
        '```sh',
        'not me',
        '```',
        '```sh runnable daemon needs=docker timeout=9',
        'echo hi',
        '```',
        '````ts runnable',
        'const x = 1;',
        '```',
        '````',
      ].join('\n'),
    );
    expect(runnableBlocks(f)).toEqual([
      { file: f, line: 5, lang: 'sh', code: 'echo hi', daemon: true, needs: ['docker'], timeoutS: 9 },
      { file: f, line: 8, lang: 'ts', code: 'const x = 1;\n```', daemon: false, needs: [], timeoutS: 120 },
    ]);
  });

  it('split a console transcript into commands, expected output and exit codes', () => {
    const steps = consoleSteps(
      [
        "$ emit '{\"a\":', 'more}'",
        "$ emit x '{",
        '  "b": 1}\'',
        'out',
        '[exit 1]',
        '$ last \\',
        '  continued',
        '',
        '',
      ].join('\n'),
    );
    expect(steps).toEqual([
      { command: "emit '{\"a\":', 'more}'", expected: [], exit: 0 },
      { command: 'emit x \'{\n  "b": 1}\'', expected: ['out'], exit: 1 },
      { command: 'last \\\n  continued', expected: [], exit: 0 },
    ]);
  });

  it.each([
    [['a', 'b'], 'a\nb\n', true],
    [['a', 'b'], 'a\nb\nc', false],
    [['pid …, status ok'], 'pid 42, status ok', true],
    [['pid …, status ok'], 'pid 42, status bad', false],
    [['{', '…', '}'], '{\n  "x": 1,\n  "y": 2\n}', true],
    [['{', '…', '}'], '{\n}', true],
    [['a', '...'], 'a\nanything\nelse', true],
    [['a (b) [c] $d'], 'a (b) [c] $d', true],
  ])('expected %j against %j → %s', (expected, output, ok) => {
    expect(outputMatches(expected, output)).toBe(ok);
  });

  it('anchors headings as GitHub does', () => {
    expect(anchorOf('Mistakes are errors, not silence')).toBe('mistakes-are-errors-not-silence');
    expect(anchorOf('The `bridge` plugin: federation')).toBe('the-bridge-plugin-federation');
  });
});
