/**
 * Child process for the embedded-engine tests: opens the embedded database in argv[2] (hint argv[3]),
 * writes one row into table `held` (argv[4], if given), reports `{ postmaster }` and holds the database
 * until killed. `exit` as argv[5] makes it call process.exit(0) after reporting instead (exit-hook test).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { openEmbedded } from '../../src/meta/engine-embedded.js';

const [dir, hint, marker, mode] = process.argv.slice(2) as [string, string | undefined, string | undefined, string | undefined];
const db = await openEmbedded(dir, hint ? { hint } : {});
if (marker) {
  await db.exec(`CREATE TABLE IF NOT EXISTS held (marker text PRIMARY KEY)`);
  await db.query(`INSERT INTO held (marker) VALUES ($1)`, [marker]);
}
const postmaster = Number(readFileSync(path.join(dir, 'pgdata', 'postmaster.pid'), 'utf8').split('\n')[0]);
process.send?.({ postmaster });
if (mode === 'exit') {
  // Let the IPC message go out first, then leave without closing the database.
  setTimeout(() => process.exit(0), 50);
} else {
  process.on('SIGTERM', () => {
    void db.close().then(() => process.exit(0));
  });
  setInterval(() => {}, 1000);
}
