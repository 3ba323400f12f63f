/** The gateway's plain modules, without a daemon: listen addresses, token checks, the bounded queue, OpenAPI's schema references. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TokenCheck, resolveToken } from '../../plugins/gateway/auth.js';
import { ClientQueue, HIGH_WATER, type OutFrame } from '../../plugins/gateway/client-queue.js';
import { parseListen } from '../../plugins/gateway/config.js';
import { buildOpenApi } from '../../plugins/gateway/openapi.js';

describe('parseListen', () => {
  it.each([
    ['8377', { host: '127.0.0.1', port: 8377 }],
    [8377, { host: '127.0.0.1', port: 8377 }],
    [':8377', { host: '127.0.0.1', port: 8377 }],
    ['0.0.0.0:80', { host: '0.0.0.0', port: 80 }],
    ['[::1]:8377', { host: '::1', port: 8377 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
  ])('%s', (v, want) => expect(parseListen(v)).toEqual(want));
  it.each(['', 'host:', 'host:port', '99999', '1.2.3.4:70000'])('refuses %j', (v) =>
    expect(() => parseListen(v)).toThrow(/gateway.listen/),
  );
});

describe('tokens', () => {
  const check = new TokenCheck('right-token-0123456789');
  it.each([
    ['Bearer right-token-0123456789', true],
    ['bearer right-token-0123456789', true],
    ['Bearer right-token-012345678', false],
    ['Bearer right-token-01234567890', false],
    ['Basic right-token-0123456789', false],
    ['Bearer', false],
    [undefined, false],
  ])('%s', (header, ok) => expect(check.header(header)).toBe(ok));

  it('takes a subprotocol token and never answers with it', () => {
    expect(check.subprotocol('agentd.v1, agentd.bearer.right-token-0123456789')).toBe(
      'agentd.bearer.right-token-0123456789',
    );
    expect(check.subprotocol('agentd.v1, agentd.bearer.wrong')).toBeNull();
  });

  it('generates a 0600 token once and keeps it across restarts', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-token-'));
    const file = path.join(dir, 'run', 'gateway.token');
    const a = resolveToken(undefined, file);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(resolveToken(undefined, file).token).toBe(a.token);
    fs.chmodSync(file, 0o644);
    resolveToken(undefined, file);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(resolveToken('configured-token-0123456789', file)).toEqual({
      token: 'configured-token-0123456789',
      source: 'config',
      file: null,
    });
    fs.rmSync(dir, { recursive: true });
  });
});

describe('ClientQueue', () => {
  function sink() {
    const out: OutFrame[] = [];
    let buffered = 0;
    return {
      out,
      set: (n: number) => void (buffered = n),
      sink: {
        write: (f: OutFrame) => void out.push(f),
        get buffered() {
          return buffered;
        },
      },
    };
  }

  it('sends at once while the client keeps up', () => {
    const s = sink();
    const q = new ClientQueue(s.sink, 3, { delivered: 0, dropped: 0 });
    for (let i = 1; i <= 5; i++) q.push({ seq: i, text: `e${i}` });
    expect(s.out.map((f) => f.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(q.depth).toBe(0);
  });

  it('queues past the high-water mark, drops the oldest past its bound, and says so first when the client drains', () => {
    const s = sink();
    const stats = { delivered: 0, dropped: 0 };
    const q = new ClientQueue(s.sink, 3, stats);
    s.set(HIGH_WATER + 1);
    for (let i = 1; i <= 10; i++) q.push({ seq: i, text: `e${i}` });
    expect(q.depth).toBe(3);
    expect(stats.dropped).toBe(7);
    s.set(0);
    q.flush();
    expect(JSON.parse(s.out[0].text)).toMatchObject({
      event: 'monitor:dropped',
      data: { count: 7, first_seq: 1, last_seq: 7 },
    });
    expect(s.out.slice(1).map((f) => f.seq)).toEqual([8, 9, 10]);
  });
});

describe('buildOpenApi', () => {
  it("moves a schema's $defs into components and rewrites its references", () => {
    const doc = buildOpenApi(
      [
        {
          event: 'x:tree',
          summary: 's',
          description: null,
          plugin: 'x',
          parameters: {},
          emits: [],
          errors: ['NOT_FOUND'],
          available: true,
          schema: {
            $schema: 'https://json-schema.org/draft/2020-12/schema',
            type: 'object',
            properties: { node: { $ref: '#/$defs/Node' } },
            $defs: {
              Node: { type: 'object', properties: { kids: { type: 'array', items: { $ref: '#/$defs/Node' } } } },
            },
          },
        },
      ],
      { version: '1' },
    ) as { components: { schemas: Record<string, Record<string, any>> }; paths: Record<string, any> };
    const data = doc.components.schemas.xTree_data;
    expect(data.$schema).toBeUndefined();
    expect(data.properties.node.$ref).toBe('#/components/schemas/xTree_Node');
    expect(doc.components.schemas.xTree_Node.properties.kids.items.$ref).toBe('#/components/schemas/xTree_Node');
    expect(Object.keys(doc.paths['/v1/events/x:tree'].post.responses)).toContain('404');
  });
});
