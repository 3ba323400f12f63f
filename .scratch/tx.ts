import Database from 'better-sqlite3';
import fs from 'node:fs';
const f = '/tmp/txbench.db'; for (const x of [f, f+'-wal', f+'-shm']) fs.rmSync(x, { force: true });
const db = new Database(f); db.pragma('journal_mode = WAL'); db.pragma('synchronous = NORMAL');
db.exec('CREATE TABLE t (a TEXT, b TEXT, i INTEGER, v TEXT, PRIMARY KEY (a,b,i)) WITHOUT ROWID');
const st = db.prepare('INSERT INTO t VALUES (?,?,?,?) ON CONFLICT (a,b,i) DO UPDATE SET v = excluded.v');
const tx = db.transaction((k: number) => { st.run('run', 's' + k, 0, '{"x":1}'); st.run('run', 's' + (k+1), 0, '{"y":2}'); });
for (const n of [1, 2, 3]) {
  const t0 = performance.now();
  for (let k = 0; k < 3000; k++) tx(k);
  console.log('tx us', ((performance.now() - t0) * 1000 / 3000).toFixed(1));
}
const t0 = performance.now();
for (let k = 0; k < 3000; k++) { st.run('run', 'x' + k, 0, '{}'); }
console.log('autocommit us', ((performance.now() - t0) * 1000 / 3000).toFixed(1));
db.pragma('synchronous = OFF');
const t1 = performance.now();
for (let k = 0; k < 3000; k++) tx(k);
console.log('OFF tx us', ((performance.now() - t1) * 1000 / 3000).toFixed(1));
