/**
 * Issue 8's SIGKILL test on the embedded PostgreSQL: see kill-replicas.ts.
 */
import { killReplicasSuite } from './kill-replicas.js';

killReplicasSuite('embedded');
