/**
 * The in-container side of a warm exec. A one-shot container's main process is a small POSIX-sh
 * supervisor whose interpreter is already started and blocked on the container's stdin, which the
 * daemon attached before the container started. An exec is then one write on that attached stream (a
 * request line, the env, the code, then the caller's stdin and EOF) instead of a `docker exec` (a runc
 * exec in the container's namespaces) plus an interpreter start.
 *
 * The supervisor reports on the same stream, with markers the code cannot produce by accident: a
 * random nonce per container, framed by ASCII record separators.
 *   - `\x1eagentd:<nonce>:ready\x1e` on stderr once the interpreter has started and waits (the pool
 *     offers such containers first);
 *   - `\x1eagentd:<nonce>:go\x1e` on stderr once the request is read (before the code runs), so a
 *     container that died before it got the request is told apart from code that failed;
 *   - `\x1eagentd:<nonce>:<status>\x1e` on stdout and on stderr once the code's process has exited
 *     (each after everything that process wrote to that stream), with sh's `$?` (128+N for a signal).
 * The answer does not wait for the engine to notice the container's exit, which costs more than the
 * rest of a small exec together. Code that reads the nonce (it is in the supervisor's argv) can end its
 * own exec early with a status of its choosing, which it can do by exiting anyway; it reaches nothing
 * else, as the container is used once and removed.
 *
 * How each language waits without giving up fidelity (the code still runs as `python3 -u FILE`,
 * `node FILE`, `Rscript --vanilla FILE`, `bash FILE`, with the same argv, paths and tracebacks):
 *   - python: a `sitecustomize` boot (found through PYTHONPATH, runs at the end of interpreter start,
 *     before the main file is opened) reads the request, writes the main file and steps aside
 *     (removes itself from PYTHONPATH, sys.path, the environment and disk; runs the image's own
 *     sitecustomize if there is one);
 *   - node: a `--require` preload does the same before node loads the main module (worker threads
 *     and fork children load it too and find nothing to do); after the 'exit' listeners it reports
 *     the status itself and leaves the way `process.exit()` does (the environment teardown of a
 *     natural end takes longer than a small program's run);
 *   - R: Rscript is started on a FIFO as its file; R opens it early, reads it after its (slow) start,
 *     and the supervisor writes the code into it and closes it;
 *   - bash: starts in about a millisecond, so the supervisor writes the file and runs it.
 * A request with `env` runs a fresh interpreter with that environment (variables such as PYTHONPATH
 * or NODE_OPTIONS act at interpreter start), still without a `docker exec`.
 */
import crypto from 'node:crypto';
import type { Language } from './languages.js';

/** The marker framing byte (ASCII RS). */
const RS = 0x1e;
const REQUEST_MAIN = {
  python: '/tmp/.agentd-main.py',
  node: '/tmp/.agentd-main.js',
  bash: '/tmp/.agentd-main.sh',
  r: '/tmp/.agentd-main.R',
} as const;

const PYTHON_BOOT = String.raw`import os, sys
def _agentd_boot():
    m = os.environ.pop('AGENTD_NONCE', None)
    os.environ.pop('PYTHONPATH', None)
    if '/tmp' in sys.path:
        sys.path.remove('/tmp')
    try:
        os.unlink('/tmp/sitecustomize.py')
    except OSError:
        pass
    if m is None:
        return
    os.write(2, b'\x1eagentd:' + m.encode() + b':ready\x1e')
    def rd(n):
        b = bytearray()
        while len(b) < n:
            c = os.read(0, n - len(b))
            if not c:
                os._exit(125)
            b += c
        return bytes(b)
    h = b''
    while not h.endswith(b'\n'):
        h += rd(1)
    cl, el = (int(x) for x in h.split())
    env = rd(el)
    code = rd(cl)
    p = '${REQUEST_MAIN.python}'
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    v = memoryview(code)
    while v:
        v = v[os.write(fd, v):]
    os.close(fd)
    os.write(2, b'\x1eagentd:' + m.encode() + b':go\x1e')
    if el:
        e = dict(os.environb)
        for r in env.split(b'\0'):
            k, s, x = r.partition(b'=')
            if s:
                e[k] = x
        os.execve(sys.executable, ['python3', '-u', p], e)
    me = sys.modules.pop('sitecustomize', None)
    try:
        import sitecustomize
    except ImportError:
        # None in this image: leave this module in its place, or the import that ran it would fail.
        sys.modules['sitecustomize'] = me
_agentd_boot()
del _agentd_boot
`;

const NODE_BOOT = String.raw`'use strict';
(() => {
  const fs = require('fs');
  // Worker threads and fork() children load preloads too: only the zygote has the nonce. The file
  // stays on disk for them.
  const i = process.execArgv.indexOf('--require');
  if (i >= 0) process.execArgv.splice(i, 2);
  delete require.cache[__filename];
  const m = process.env.AGENTD_NONCE;
  if (m === undefined) return;
  delete process.env.AGENTD_NONCE;
  // Set up now what the first console.log would (stdout, stderr streams), while nobody waits.
  void process.stdout;
  void process.stderr;
  fs.writeSync(2, '\x1eagentd:' + m + ':ready\x1e');
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const rd = (n) => {
    const b = Buffer.alloc(n);
    for (let o = 0; o < n; ) {
      let r;
      try { r = fs.readSync(0, b, o, n - o, null); } catch (e) {
        if (e.code === 'EAGAIN') { Atomics.wait(pause, 0, 0, 2); continue; }
        throw e;
      }
      if (r === 0) process.exit(125);
      o += r;
    }
    return b;
  };
  let h = '';
  while (!h.endsWith('\n')) h += rd(1).toString('latin1');
  const [cl, el] = h.trim().split(' ').map(Number);
  const env = rd(el);
  fs.writeFileSync('${REQUEST_MAIN.node}', rd(cl));
  fs.writeSync(2, '\x1eagentd:' + m + ':go\x1e');
  if (el > 0) {
    const e = { ...process.env };
    for (const rec of env.toString('utf8').split('\0')) { const j = rec.indexOf('='); if (j > 0) e[rec.slice(0, j)] = rec.slice(j + 1); }
    const r = require('child_process').spawnSync(process.execPath, ['${REQUEST_MAIN.node}'], { stdio: 'inherit', env: e });
    process.exit(r.status ?? 128 + (require('os').constants.signals[r.signal] ?? 0));
  }
  // Once every 'exit' listener ran, the status is final: report it (as the supervisor would, after
  // all the code wrote) and leave the way process.exit() does, without tearing the environment down.
  // Not after an uncaught exception: 'exit' is emitted before node prints the error.
  let fatal = false;
  process.on('uncaughtExceptionMonitor', () => { fatal = true; });
  const emit = process.emit;
  process.emit = function (event, ...args) {
    const r = emit.call(this, event, ...args);
    if (event === 'exit' && !fatal) {
      const code = process.exitCode ?? 0;
      const mark = '\x1eagentd:' + m + ':' + code + '\x1e';
      try { fs.writeSync(1, mark); fs.writeSync(2, mark); } catch {}
      process.reallyExit(code);
    }
    return r;
  };
})();
`;

/**
 * The supervisor: `sh -c SUPERVISOR <language> <nonce> <boot>`. Every exit path prints the status
 * markers; `exit 125` only when the request never came (the daemon went away).
 */
export const SUPERVISOR = String.raw`l=$0 m=$1
# The shell's own stderr goes nowhere (it would report "Killed" for a child that died of a signal);
# the interpreters and the markers get the container's stderr, kept on fd 9. Foreground children run
# as (exec ...): a simple command's redirections would be the shell's own while it waits.
exec 9>&2 2>/dev/null
go() { printf '\036agentd:%s:go\036' "$m" >&9; }
ready() { printf '\036agentd:%s:ready\036' "$m" >&9; }
case $l in
python)
  printf '%s' "$2" > /tmp/sitecustomize.py || exit 125
  (export PYTHONPATH=/tmp AGENTD_NONCE="$m"; exec python3 -u ${REQUEST_MAIN.python} 2>&9 9>&-)
  ;;
node)
  printf '%s' "$2" > /tmp/.agentd-boot.js || exit 125
  (export AGENTD_NONCE="$m"; exec node --require /tmp/.agentd-boot.js ${REQUEST_MAIN.node} 2>&9 9>&-)
  ;;
bash)
  ready
  IFS=' ' read -r cl el || exit 125
  if [ "$el" -gt 0 ]; then head -c "$el" > /tmp/.agentd-env; fi
  head -c "$cl" > ${REQUEST_MAIN.bash}
  go
  (if [ "$el" -gt 0 ]; then . /tmp/.agentd-env; fi; exec bash ${REQUEST_MAIN.bash} 2>&9 9>&-)
  ;;
r)
  f=${REQUEST_MAIN.r}
  if ! command -v Rscript >/dev/null; then
    # No R in this image: answer the exec as running it would (127, "not found").
    ready
    IFS=' ' read -r cl el || exit 125
    head -c "$((el + cl))" >/dev/null
    go
    (exec Rscript 2>&9 9>&-)
  else
  mkfifo "$f" && exec 3<>"$f" || exit 125
  exec 4<&0
  Rscript --vanilla "$f" <&4 2>&9 3>&- 4<&- 9>&- &
  p=$!
  exec 4<&-
  # R's first expression says it has started (it is what R reads first, after its start).
  printf 'cat("\\036agentd:%s:ready\\036", file = stderr())\n' "$m" >&3
  IFS=' ' read -r cl el || exit 125
  if [ "$el" -gt 0 ]; then
    kill -9 "$p"; wait "$p"
    exec 3>&-
    head -c "$el" > /tmp/.agentd-env
    head -c "$cl" > /tmp/.agentd-env-main.R
    go
    (. /tmp/.agentd-env; exec Rscript --vanilla /tmp/.agentd-env-main.R 2>&9 9>&-)
  else
    # Closing our end is R's end of file only once R has the FIFO open: wait for that (R opens it
    # early in its start), or for R to be gone. Until the exec, the forked shell still holds our fd 3.
    opened() {
      read -r c < /proc/"$p"/comm && [ "$c" != sh ] || return 1
      for x in /proc/"$p"/fd/*; do [ "$x" -ef "$f" ] && return 0; done; return 1
    }
    while kill -0 "$p" && ! opened; do sleep 0.01; done
    exec 5>"$f" 3>&-
    go
    head -c "$cl" >&5
    exec 5>&-
    wait "$p"
  fi
  fi
  ;;
*) exit 125 ;;
esac
rc=$?
printf '\036agentd:%s:%d\036' "$m" "$rc"
printf '\036agentd:%s:%d\036' "$m" "$rc" >&9
`;

const BOOTS: Record<Language, string> = { python: PYTHON_BOOT, node: NODE_BOOT, bash: '', r: '' };

export function newNonce(): string {
  return crypto.randomBytes(16).toString('hex');
}

/** The main process of a container waiting for one exec in `language`. */
export function zygoteCmd(language: Language, nonce: string): string[] {
  return ['/bin/sh', '-c', SUPERVISOR, language, nonce, BOOTS[language]];
}

/** Single-quote for POSIX sh: every byte but NUL stands for itself inside. */
function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The bytes the daemon writes: `<code bytes> <env bytes>\n`, the env, the code. The env is
 * NUL-separated `K=V` for the in-language boots, `export` lines for the sh supervisor. The caller's
 * stdin follows, then end of file.
 */
export function encodeRequest(language: Language, code: string, env: Record<string, string>): Buffer {
  const entries = Object.entries(env);
  const envText =
    language === 'python' || language === 'node'
      ? entries.map(([k, v]) => `${k}=${v}\0`).join('')
      : entries.map(([k, v]) => `export ${k}=${shQuote(v)}\n`).join('');
  const envBuf = Buffer.from(envText, 'utf8');
  const codeBuf = Buffer.from(code, 'utf8');
  return Buffer.concat([Buffer.from(`${codeBuf.length} ${envBuf.length}\n`, 'latin1'), envBuf, codeBuf]);
}

/**
 * Finds the supervisor's markers in one output stream and passes every other byte on, in order.
 * Bytes that could be the start of a marker are held back until the next data shows they are not
 * (only a suffix beginning with the separator byte, so ordinary output streams on undelayed).
 * Anything after the status marker (written by a process the code left running) is dropped.
 */
export class MarkerScanner {
  private tail: Buffer = Buffer.alloc(0);
  private readonly prefix: Buffer;
  /** The status marker was seen: the stream is complete. */
  done = false;
  status: number | null = null;

  constructor(
    nonce: string,
    private readonly out: (data: Buffer) => void,
    /** `go` and `ready`, in the order they come. */
    private readonly onSignal: (word: 'go' | 'ready') => void = () => undefined,
  ) {
    this.prefix = Buffer.from(`\x1eagentd:${nonce}:`, 'latin1');
  }

  push(data: Buffer): void {
    if (this.done) return;
    let buf = this.tail.length ? Buffer.concat([this.tail, data]) : data;
    this.tail = Buffer.alloc(0);
    for (;;) {
      const at = buf.indexOf(this.prefix);
      if (at < 0) break;
      const close = buf.indexOf(RS, at + this.prefix.length);
      if (close < 0) {
        // The marker's end has not arrived yet; a real marker is short, so a long run is output.
        if (buf.length - at > this.prefix.length + 12) {
          this.emit(buf.subarray(0, at + 1));
          buf = buf.subarray(at + 1);
          continue;
        }
        this.emit(buf.subarray(0, at));
        this.tail = Buffer.from(buf.subarray(at));
        return;
      }
      const word = buf.subarray(at + this.prefix.length, close).toString('latin1');
      if (word === 'go' || word === 'ready') {
        this.emit(buf.subarray(0, at));
        buf = buf.subarray(close + 1);
        this.onSignal(word);
        continue;
      }
      if (/^\d{1,3}$/.test(word)) {
        this.emit(buf.subarray(0, at));
        this.status = Number(word);
        this.done = true;
        return;
      }
      // Not a marker after all: output.
      this.emit(buf.subarray(0, close + 1));
      buf = buf.subarray(close + 1);
    }
    const keep = partialPrefix(buf, this.prefix);
    this.emit(buf.subarray(0, buf.length - keep));
    if (keep) this.tail = Buffer.from(buf.subarray(buf.length - keep));
  }

  /** The stream ended: whatever was held back is output after all. */
  end(): void {
    if (!this.done && this.tail.length) this.emit(this.tail);
    this.tail = Buffer.alloc(0);
  }

  private emit(b: Buffer): void {
    if (b.length) this.out(b);
  }
}

/** Length of the longest suffix of `buf` that is a proper prefix of `prefix`. */
function partialPrefix(buf: Buffer, prefix: Buffer): number {
  const from = Math.max(0, buf.length - prefix.length + 1);
  for (let i = buf.indexOf(RS, from); i >= 0 && i < buf.length; i = buf.indexOf(RS, i + 1)) {
    const n = buf.length - i;
    if (buf.compare(prefix, 0, n, i, buf.length) === 0) return n;
  }
  return 0;
}
