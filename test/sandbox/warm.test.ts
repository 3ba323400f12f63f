/**
 * Warm execs: each pooled container's interpreter is already running and waiting (zygote.ts). What a
 * user would notice must be what a fresh `python3 -u FILE` / `node FILE` / `Rscript --vanilla FILE` /
 * `bash FILE` gives: argv, paths, tracebacks, stdin, env, exit statuses, signals; the waiting leaves
 * nothing behind that the code can see, and each container still serves one exec.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker, ownedContainers, startService, type TestService } from './docker-env.js';

describeDocker('sandbox warm execs', () => {
  let t: TestService;

  beforeAll(async () => {
    t = await startService({ pool_size: 1 });
    await t.svc.pool.settled();
  }, 60_000);

  afterAll(async () => {
    await t?.svc.stop(Date.now() + 10_000);
    if (t) expect(await ownedContainers(t.svc.owner)).toEqual([]);
  }, 30_000);

  /** Run warm: wait for the pool (refills run after each exec) and check the exec used it. */
  async function warm(req: Record<string, unknown> & { language: string; code: string }) {
    await t.svc.pool.settled();
    const r = await t.svc.exec({ timeout_s: 20, ...req } as Parameters<typeof t.svc.exec>[0]);
    const started = t.events.find((e) => e.event === 'sandbox:exec_started' && e.data.exec_id === r.exec_id);
    expect(started?.data.warm).toBe(true);
    return r;
  }

  it('every language has warm containers, and each serves one exec', async () => {
    expect(t.svc.pool.readyByLanguage()).toEqual({ python: 1, bash: 1, node: 1, r: 1 });
    const before = new Set(t.svc.pool.ids());
    const r = await warm({ language: 'python', code: 'print(6*7)' });
    expect(r).toMatchObject({ stdout: '42\n', exit_code: 0 });
    await t.svc.pool.settled();
    await t.svc.containers.settle();
    const after = (await ownedContainers(t.svc.owner)).map((c) => c.Id);
    expect(after).toHaveLength(4); // the used one is gone, its replacement is new
    expect(after.filter((id) => !before.has(id))).toHaveLength(1);
  }, 60_000);

  it('python: argv, sys.path[0], traceback and environment as for python3 -u FILE; nothing of the wait is visible', async () => {
    const r = await warm({
      language: 'python',
      code: [
        'import os, sys',
        'print(sys.argv, sys.path[0], __file__, sys.orig_argv)',
        'print([k for k in os.environ if k.startswith(("AGENTD", "PYTHONPATH"))], sorted(os.listdir("/tmp")))',
        'print(sys.stdout.write_through)',
        'def f():',
        '    raise ValueError("boom")',
        'f()',
      ].join('\n'),
    });
    expect(r.exit_code).toBe(1);
    const [argv, env, unbuffered] = r.stdout.trim().split('\n');
    expect(argv).toBe("['/tmp/.agentd-main.py'] /tmp /tmp/.agentd-main.py ['python3', '-u', '/tmp/.agentd-main.py']");
    expect(env).toBe("[] ['.agentd-main.py']");
    expect(unbuffered).toBe('True');
    expect(r.stderr).toBe(
      [
        'Traceback (most recent call last):',
        '  File "/tmp/.agentd-main.py", line 7, in <module>',
        '    f()',
        '  File "/tmp/.agentd-main.py", line 6, in f',
        '    raise ValueError("boom")',
        'ValueError: boom',
        '',
      ].join('\n'),
    );
  }, 30_000);

  it('python: stdin and env (a fresh interpreter takes the env, PYTHON* variables included)', async () => {
    const r = await warm({
      language: 'python',
      code: 'import os, sys\nprint(sys.stdin.read().upper(), os.environ["GREETING"], sys.flags.optimize)',
      stdin: 'from stdin\n',
      env: { GREETING: 'it\'s a "test" $HOME', PYTHONOPTIMIZE: '1' },
    });
    expect(r).toMatchObject({ stdout: 'FROM STDIN\n it\'s a "test" $HOME 1\n', exit_code: 0 });
  }, 30_000);

  it('node: argv, require.main, execArgv and stack traces as for node FILE; fork children run', async () => {
    const r = await warm({
      language: 'node',
      code: [
        'console.log(JSON.stringify([process.argv.slice(1), require.main === module, process.execArgv, Object.keys(process.env).filter((k) => k.startsWith("AGENTD"))]));',
        'const c = require("child_process").fork("/tmp/.agentd-main.js", ["child"], { stdio: "inherit" });',
        'if (process.argv[2] !== "child") c.on("exit", (code) => { console.log("child exited", code); throw new Error("late"); });',
      ].join('\n'),
    });
    // The fork child runs the same file (argv "child") and exits; the parent then throws.
    expect(r.exit_code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('[["/tmp/.agentd-main.js"],true,[],[]]');
    expect(lines).toContain('child exited 0');
    expect(r.stderr).toMatch(/Error: late\n {4}at ChildProcess\.<anonymous> \(\/tmp\/\.agentd-main\.js:3:/);
  }, 30_000);

  it('node: exit listeners, a status they set, uncaught errors and rejections, worker threads', async () => {
    const r = await warm({
      language: 'node',
      code: 'process.on("exit", (c) => { console.log("exit", c); process.exitCode = 5; });\nconsole.log(1)',
    });
    expect(r).toMatchObject({ stdout: '1\nexit 0\n', exit_code: 5 });
    const rej = await warm({
      language: 'node',
      code: 'process.on("exit", (c) => console.log("exit", c));\nPromise.reject(new Error("rejected"))',
    });
    expect(rej).toMatchObject({ stdout: 'exit 1\n', exit_code: 1 });
    expect(rej.stderr).toMatch(/Error: rejected\n {4}at /);
    const w = await warm({
      language: 'node',
      code: [
        'const { Worker, isMainThread, parentPort } = require("worker_threads");',
        'if (isMainThread) new Worker(__filename).on("message", (m) => console.log("worker says", m));',
        'else parentPort.postMessage("hi");',
      ].join('\n'),
    });
    expect(w).toMatchObject({ stdout: 'worker says hi\n', stderr: '', exit_code: 0 });
  }, 30_000);

  it('node: stdin, env, exit status', async () => {
    const r = await warm({
      language: 'node',
      code: 'let d="";process.stdin.on("data",c=>d+=c).on("end",()=>{console.log(d.toUpperCase(), process.env.X);process.exit(4)})',
      stdin: 'abc',
      env: { X: 'y' },
    });
    expect(r).toMatchObject({ stdout: 'ABC y\n', exit_code: 4 });
  }, 30_000);

  it('r: commandArgs, stdin, errors as for Rscript --vanilla FILE; env through a fresh R', async () => {
    const r = await warm({
      language: 'r',
      code: 'x <- readLines(file("stdin"))\ncat(toupper(x), commandArgs()[5], sep = "\\n")\nstop("rboom")',
      stdin: 'r1\nr2\n',
    });
    expect(r).toMatchObject({
      stdout: 'R1\nR2\n--file=/tmp/.agentd-main.R\n',
      stderr: 'Error: rboom\nExecution halted\n',
      exit_code: 1,
    });
    const e = await warm({
      language: 'r',
      code: 'cat(Sys.getenv("FOO"), "\\n"); quit(status = 3)',
      env: { FOO: 'renv' },
    });
    expect(e).toMatchObject({ stdout: 'renv \n', stderr: '', exit_code: 3 });
  }, 30_000);

  it('bash: $0, stdin, env, signals (no shell message of ours in stderr)', async () => {
    const r = await warm({
      language: 'bash',
      code: 'read -r l; echo "$0 in=$l env=$G"; kill -9 $$',
      stdin: 'x y\n',
      env: { G: "a'b" },
    });
    expect(r).toMatchObject({
      stdout: "/tmp/.agentd-main.sh in=x y env=a'b\n",
      stderr: '',
      exit_code: 137,
      oom_killed: false,
    });
  }, 30_000);

  it("output that looks like the supervisor's markers (without its nonce) is passed through untouched", async () => {
    const fake = '\x1eagentd:0123456789abcdef0123456789abcdef:0\x1e';
    const r = await warm({
      language: 'python',
      code: `import sys\nsys.stdout.write(${JSON.stringify(fake)} + "after")\nsys.stderr.write("\\x1eagentd:")`,
    });
    expect(r).toMatchObject({ stdout: `${fake}after`, stderr: '\x1eagentd:', exit_code: 0 });
  }, 30_000);

  it('the exec ends when the code exits; what it left running goes with the container', async () => {
    const t0 = Date.now();
    const r = await warm({ language: 'bash', code: '(sleep 30; echo late) &\necho early' });
    expect(r).toMatchObject({ stdout: 'early\n', exit_code: 0, timed_out: false });
    expect(Date.now() - t0).toBeLessThan(10_000);
  }, 30_000);

  it("code that kills the supervisor still gets an answer (the container's own exit status)", async () => {
    const r = await warm({ language: 'bash', code: 'echo before; kill -9 -1; sleep 5; echo after' });
    expect(r.stdout).toBe('before\n');
    expect(r.timed_out).toBe(false);
    expect(r.exit_code).not.toBe(0);
  }, 30_000);

  it('files, big code and a NUL byte go through the warm path', async () => {
    const big = `x = ${JSON.stringify('y'.repeat(300_000))}\nprint(len(x), open("data/in.txt").read())`;
    const r = await warm({ language: 'python', code: big, files: [{ path: 'data/in.txt', content: 'file!' }] });
    expect(r).toMatchObject({ stdout: '300000 file!\n', exit_code: 0 });
    const nul = await warm({ language: 'bash', code: 'printf "%s\\n" one\n# a NUL: \0\necho two' });
    expect(nul.stdout).toBe('one\ntwo\n');
  }, 30_000);
});
