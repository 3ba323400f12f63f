/** Pure parts of the sandbox: container spec, file paths and tar, output capping, queueing, config, schemas. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { parseConfig } from '../../plugins/sandbox/config.js';
import { decodeFiles, tar, workspacePath } from '../../plugins/sandbox/files.js';
import { containerSpec, LABEL, LABEL_OWNER } from '../../plugins/sandbox/hardening.js';
import { Demuxer, OutputCollector } from '../../plugins/sandbox/output.js';
import { createSchema, destroySchema, execSchema, IMAGE_REFERENCE } from '../../plugins/sandbox/schemas.js';
import { encodeRequest, MarkerScanner } from '../../plugins/sandbox/zygote.js';
import { describeParameters } from '../../daemon/schema-doc.js';
import { Semaphore } from '../../plugins/sandbox/semaphore.js';
import { DaemonError } from '../../client/errors.js';

const config = parseConfig({});
const limits = { memory_mb: 256, cpus: 0.5, pids: 64 };

describe('container spec', () => {
  const spec = containerSpec({ image: 'img', owner: 'own', kind: 'exec', limits, config });
  const hc = spec.HostConfig!;
  it.each([
    ['NetworkMode', hc.NetworkMode, 'none'],
    ['CapDrop', hc.CapDrop, ['ALL']],
    ['SecurityOpt', hc.SecurityOpt, ['no-new-privileges:true']],
    ['ReadonlyRootfs', hc.ReadonlyRootfs, true],
    ['Privileged', hc.Privileged, false],
    ['Init', hc.Init, true],
    ['Memory', hc.Memory, 256 * 1024 * 1024],
    ['MemorySwap (= Memory: no swap)', hc.MemorySwap, 256 * 1024 * 1024],
    ['NanoCpus', hc.NanoCpus, 500_000_000],
    ['PidsLimit', hc.PidsLimit, 64],
    ['User', spec.User, '1000:1000'],
    ['NetworkDisabled', spec.NetworkDisabled, true],
  ])('%s', (_name, actual, expected) => {
    expect(actual).toEqual(expected);
  });

  it('sizes /dev/shm like /tmp (Docker would give a writable 64 MiB)', () => {
    expect(hc.ShmSize).toBe(config.limits.shm_mb * 1024 * 1024);
    expect(config.limits.shm_mb).toBe(16);
  });

  it('an exec container idles on sleep with no stdin; a zygote waits on attached stdio, hardened the same', () => {
    expect(spec.Cmd).toEqual(['sleep', '2147483647']);
    expect([spec.OpenStdin, spec.AttachStdin]).toEqual([false, false]);
    const z = containerSpec({
      image: 'img',
      owner: 'own',
      kind: 'pool',
      limits,
      config,
      zygote: { language: 'python', nonce: 'n0' },
    });
    expect(z.Cmd!.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(z.Cmd!.slice(3, 5)).toEqual(['python', 'n0']);
    expect([z.OpenStdin, z.StdinOnce, z.AttachStdin, z.AttachStdout, z.AttachStderr, z.Tty]).toEqual([
      true,
      true,
      true,
      true,
      true,
      false,
    ]);
    expect(z.HostConfig).toEqual(hc);
    expect(z.User).toBe(spec.User);
  });

  it('mounts a noexec /tmp and a size-limited workspace tmpfs', () => {
    expect(hc.Tmpfs!['/tmp']).toMatch(/(^|,)noexec(,|$)/);
    expect(hc.Tmpfs!['/tmp']).toMatch(/size=16m/);
    expect(hc.Tmpfs!['/workspace']).toMatch(/size=64m/);
    expect(hc.Tmpfs!['/workspace']).toMatch(/uid=1000/);
  });

  it('sets ulimits and labels', () => {
    expect(hc.Ulimits).toEqual(
      expect.arrayContaining([
        { Name: 'nofile', Soft: 1024, Hard: 1024 },
        { Name: 'core', Soft: 0, Hard: 0 },
      ]),
    );
    expect(spec.Labels).toMatchObject({ [LABEL]: '1', [LABEL_OWNER]: 'own' });
  });

  it('bind-mounts a session workspace instead of the tmpfs', () => {
    const s = containerSpec({
      image: 'img',
      owner: 'o',
      kind: 'session',
      limits,
      config,
      sessionId: 's1',
      workspaceDir: '/host/ws',
    });
    expect(s.HostConfig!.Tmpfs!['/workspace']).toBeUndefined();
    expect(s.HostConfig!.Mounts).toEqual([{ Type: 'bind', Source: '/host/ws', Target: '/workspace', ReadOnly: false }]);
  });

  it('refuses to run as root by config', () => {
    expect(() => parseConfig({ user: '0:0' })).toThrow();
    expect(() => parseConfig({ user: 'root' })).toThrow();
  });
});

describe('workspace paths', () => {
  it.each(['a.txt', 'dir/b.csv', './c', 'd//e', 'x/./y'])('accepts %s', (p) => {
    expect(() => workspacePath(p, 0)).not.toThrow();
  });
  it.each(['../../etc/passwd', '/etc/passwd', 'a/../../b', '..', 'a/..', '', '.', 'dir/', 'a\0b'])(
    'rejects %j with INVALID_DATA',
    (p) => {
      try {
        workspacePath(p, 3);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(DaemonError);
        expect((e as DaemonError).code).toBe('INVALID_DATA');
        expect((e as DaemonError).details).toMatchObject({ issues: [{ path: ['files', 3, 'path'] }] });
      }
    },
  );
  it('rejects duplicate paths', () => {
    expect(() =>
      decodeFiles([
        { path: 'a', content: '' },
        { path: './a', content: '' },
      ]),
    ).toThrow(/twice/);
  });
});

describe('tar', () => {
  it('round-trips through the system tar (long names, base64, modes)', () => {
    const long = 'deep/'.repeat(30) + 'file.txt';
    const entries = decodeFiles([
      { path: 'a.txt', content: 'héllo\n' },
      { path: long, content: 'x' },
      { path: 'bin', content: Buffer.from([0, 255, 1]).toString('base64'), encoding: 'base64', executable: true },
    ]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sbx-tar-'));
    fs.writeFileSync(path.join(dir, 'x.tar'), tar(entries, 1000, 1000));
    execFileSync('tar', ['-xf', 'x.tar', '-C', dir, '--no-same-owner'], { cwd: dir });
    expect(fs.readFileSync(path.join(dir, 'a.txt'), 'utf8')).toBe('héllo\n');
    expect(fs.readFileSync(path.join(dir, long), 'utf8')).toBe('x');
    expect([...fs.readFileSync(path.join(dir, 'bin'))]).toEqual([0, 255, 1]);
    expect(fs.statSync(path.join(dir, 'bin')).mode & 0o777).toBe(0o755);
    fs.rmSync(dir, { recursive: true });
  });
});

function frame(type: number, s: string | Buffer): Buffer {
  const p = Buffer.isBuffer(s) ? s : Buffer.from(s);
  const h = Buffer.alloc(8);
  h[0] = type;
  h.writeUInt32BE(p.length, 4);
  return Buffer.concat([h, p]);
}

describe('output', () => {
  it('demuxes frames split at any byte', () => {
    const all = Buffer.concat([frame(1, 'out1'), frame(2, 'err'), frame(1, 'out2')]);
    for (let cut = 0; cut <= all.length; cut++) {
      const got: string[] = [];
      const d = new Demuxer((s, p) => got.push(`${s}:${p}`));
      d.push(all.subarray(0, cut));
      d.push(all.subarray(cut));
      expect(got).toEqual(['stdout:out1', 'stderr:err', 'stdout:out2']);
    }
  });

  it('keeps at most the cap per stream and flags truncation', () => {
    const c = new OutputCollector({ capBytes: 10, flushMs: 10, chunkBytes: 4 });
    c.push('stdout', Buffer.from('0123456789abcdef'));
    c.push('stdout', Buffer.from('more'));
    c.push('stderr', Buffer.from('e'));
    expect(c.text('stdout')).toBe('0123456789');
    expect(c.text('stderr')).toBe('e');
    expect(c.truncated).toBe(true);
    expect(c.bytes('stdout')).toBe(20);
  });

  it('coalesces chunks, splits big ones and never cuts a UTF-8 character', () => {
    vi.useFakeTimers();
    onTestFinished(() => void vi.useRealTimers());
    const chunks: string[] = [];
    const c = new OutputCollector({ capBytes: 1000, flushMs: 20, chunkBytes: 4, onChunk: (_s, ch) => chunks.push(ch) });
    const euro = Buffer.from('€');
    c.push('stdout', euro.subarray(0, 1));
    c.push('stdout', euro.subarray(1));
    c.push('stdout', Buffer.from('ab'));
    vi.advanceTimersByTime(19);
    expect(chunks).toEqual([]); // coalescing window still open
    vi.advanceTimersByTime(1);
    expect(chunks).toEqual(['€ab']);
    c.push('stdout', Buffer.from('0123456789'));
    c.flush(true);
    expect(chunks.slice(1)).toEqual(['0123', '4567', '89']);
  });
});

describe('semaphore', () => {
  it('bounds concurrency, queues in order, then answers OVERLOADED', async () => {
    const s = new Semaphore(2, 1);
    const r1 = await s.acquire();
    await s.acquire();
    const order: number[] = [];
    const p3 = s.acquire().then((rel) => (order.push(3), rel));
    await expect(s.acquire()).rejects.toMatchObject({ code: 'OVERLOADED' });
    expect(s.running).toBe(2);
    r1();
    (await p3)();
    expect(order).toEqual([3]);
    expect(s.running).toBe(1);
  });

  it('drops a waiter whose request was abandoned', async () => {
    const s = new Semaphore(1, 5);
    await s.acquire();
    const ac = new AbortController();
    const p = s.acquire(ac.signal);
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(s.queued).toBe(0);
  });
});

describe('config and schemas', () => {
  it('coerces env-style strings and fills defaults', () => {
    const c = parseConfig({ pool_size: '3', limits: { memory_mb: '128' } });
    expect(c.pool_size).toBe(3);
    expect(c.limits.memory_mb).toBe(128);
    expect(c.limits.pids).toBe(128);
    expect(c.image).toBe('agentd-sandbox:latest');
    expect(c.pool_languages).toEqual(['python', 'bash', 'node', 'r']);
    expect(parseConfig({ pool_languages: 'python, r' }).pool_languages).toEqual(['python', 'r']);
    expect(() => parseConfig({ pool_languages: 'python,cobol' })).toThrow();
  });

  it.each([
    [{ language: 'cobol', code: 'x' }, 'language'],
    [{ language: 'python', code: '' }, 'code'],
    [{ language: 'python', code: '  \n ' }, 'code'],
    [{ language: 'python', code: 'x', timeout_s: 0 }, 'timeout_s'],
    [{ language: 'python', code: 'x', timeout_s: -1 }, 'timeout_s'],
    [{ language: 'python', code: 'x', memory_mb: 4 }, 'memory_mb'],
    [{ language: 'python', code: 'x', cpus: 0 }, 'cpus'],
    [{ language: 'python', code: 'x', env: { 'BAD-NAME': '1' } }, 'env'],
    [{ language: 'python', code: 'x', env: { AGENTD_CODE: '1' } }, 'env'],
    [{ language: 'python', code: 'x', session_id: '../x' }, 'session_id'],
    [{ language: 'python', code: 'x', env: { A: 'nul\0inside' } }, 'env'],
    [{ language: 'python', code: 'x', image: '../../x' }, 'image'],
  ])('exec rejects %j at %s', (data, field) => {
    const r = execSchema.safeParse(data);
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path[0]).toBe(field);
  });

  it('every field is described (the catalog is generated from them)', () => {
    for (const schema of [execSchema, createSchema, destroySchema]) {
      const params = describeParameters(schema);
      expect(Object.keys(params).length).toBeGreaterThan(0);
      for (const [k, doc] of Object.entries(params)) expect(doc.description, k).toBeTruthy();
    }
  });
});

describe('image references', () => {
  it.each([
    'agentd-sandbox:latest',
    'python:3.12-slim',
    'python',
    'library/python',
    'docker.io/library/python:3',
    'localhost:5000/a/b:c',
    'Registry.Example.com/team/img',
    `img@sha256:${'a'.repeat(64)}`,
    `img:tag@sha256:${'b'.repeat(64)}`,
    '0e46c840f6d5',
    'a__b',
    'a---b.c_d',
  ])('accepts %s', (ref) => {
    expect(IMAGE_REFERENCE.test(ref)).toBe(true);
    expect(createSchema.safeParse({ image: ref }).success).toBe(true);
  });

  it.each([
    '../../x',
    '/etc/passwd',
    'UPPER',
    'a:',
    ':tag',
    'a b',
    'a//b',
    'a/../b',
    '-a',
    'a_',
    'a@sha256:xyz',
    'a:-t',
  ])('refuses %s', (ref) => {
    expect(IMAGE_REFERENCE.test(ref)).toBe(false);
    expect(createSchema.safeParse({ image: ref }).error?.issues[0]?.path).toEqual(['image']);
  });

  it('a bad configured image fails the config, not the first exec', () => {
    expect(() => parseConfig({ image: '../x' })).toThrow(/image reference/);
  });
});

describe('warm exec protocol', () => {
  const nonce = '0123abcd';
  const mark = (w: string) => `\x1eagentd:${nonce}:${w}\x1e`;

  it('encodes the request line, env and code per language', () => {
    expect(encodeRequest('python', 'print(1)', {}).toString()).toBe('8 0\nprint(1)');
    expect(encodeRequest('node', 'x', { A: '1', B: 'é' }).toString()).toBe('1 9\nA=1\0B=é\0x');
    expect(encodeRequest('bash', 'échoé', { A: "it's" }).toString()).toBe(`7 19\nexport A='it'\\''s'\néchoé`);
  });

  it('passes output through and finds the markers wherever the stream is cut', () => {
    const stream = `${mark('ready')}out${mark('go')}more\x1e\x1eagentd:${nonce}x${mark('3')}left behind`;
    for (let cut = 0; cut <= stream.length; cut++) {
      for (const step of [1, 3, 7, 1000]) {
        let out = '';
        const signals: string[] = [];
        const sc = new MarkerScanner(
          nonce,
          (b) => (out += b.toString('latin1')),
          (w) => signals.push(w),
        );
        const bytes = Buffer.from(stream, 'latin1');
        const chunks = [
          bytes.subarray(0, cut),
          ...Array.from({ length: Math.ceil((bytes.length - cut) / step) }, (_, i) =>
            bytes.subarray(cut + i * step, cut + (i + 1) * step),
          ),
        ];
        for (const c of chunks) sc.push(c);
        sc.end();
        expect(out).toBe(`outmore\x1e\x1eagentd:${nonce}x`);
        expect([signals, sc.done, sc.status]).toEqual([['ready', 'go'], true, 3]);
      }
    }
  });

  it('another nonce, a malformed marker or a held-back prefix at the end are output', () => {
    let out = '';
    const sc = new MarkerScanner(nonce, (b) => (out += b.toString('latin1')));
    const text = `\x1eagentd:ffff:0\x1e ${`\x1eagentd:${nonce}:x1\x1e`} \x1eagentd:${nonce.slice(0, 3)}`;
    sc.push(Buffer.from(text, 'latin1'));
    expect(out).toBe(text.slice(0, text.length - `\x1eagentd:${nonce.slice(0, 3)}`.length));
    sc.end();
    expect(out).toBe(text);
    expect(sc.done).toBe(false);
  });
});
