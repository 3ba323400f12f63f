import Docker from 'dockerode';
const docker = new Docker();
const IMAGE = 'agentd-sandbox:latest';
const t = () => Number(process.hrtime.bigint()) / 1e6;
const BOOT = `
import os, sys
def _agentd_boot():
    hdr = b''
    while not hdr.endswith(b'\\n'):
        hdr += os.read(0, 1)
    n = int(hdr)
    src = b''
    while len(src) < n:
        src += os.read(0, n - len(src))
    path = '/tmp/.agentd-main.py'
    with open(path, 'wb') as f: f.write(src)
    return path, src
_p, _s = _agentd_boot()
del _agentd_boot
sys.argv[:] = [_p]
sys.path[0] = '/tmp'
exec(compile(_s, _p, 'exec'))
`;
const SUP = `python3 -u -c "$0" & wait $!; rc=$?; printf '\\036X%d\\036' $rc; printf '\\036X%d\\036' $rc >&2`;
async function one() {
  const c = await docker.createContainer({ Image: IMAGE, Cmd: ['/bin/sh', '-c', SUP, BOOT], Entrypoint: [], User: '1000:1000', OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true, HostConfig: { NetworkMode: 'none', Init: true, ReadonlyRootfs: true, Tmpfs: { '/tmp': 'rw,size=16m' }, LogConfig: { Type: 'none', Config: {} } } });
  const s = await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
  await c.start();
  await new Promise((r) => setTimeout(r, 300));
  const t0 = t();
  let first = 0, done = 0, out = '';
  let seen = 0;
  const fin = new Promise<void>((r) => s.on('data', (b: Buffer) => { if (!first) first = t(); out += b.subarray(8).toString(); seen += (b.toString().match(/\x1eX/g) ?? []).length; if (seen >= 2 && !done) { done = t(); r(); } }));
  const code = Buffer.from('print(1)');
  s.write(Buffer.concat([Buffer.from(`${code.length}\n`), code]));
  s.end();
  await fin;
  c.remove({ force: true });
  return [first - t0, done - first, done - t0];
}
async function main() {
  console.log('sup: ->first byte, ->markers, total');
  for (let i = 0; i < 12; i++) { const r = await one(); console.log(r.map((x) => x.toFixed(1)).join('\t')); }
}
main();
