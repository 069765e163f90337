/** Child process for lock tests: opens an embedded database directory and holds it until killed. */
import { openPglite } from '../../src/meta/engine-pglite.js';

const db = await openPglite(process.argv[2]);
process.send?.('ready');
process.on('SIGTERM', () => {
  void db.close().then(() => process.exit(0));
});
setInterval(() => {}, 1000);
