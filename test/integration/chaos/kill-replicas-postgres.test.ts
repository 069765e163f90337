/**
 * Issue 8's SIGKILL test on PostgreSQL: see kill-replicas.ts.
 */
import { killReplicasSuite } from './kill-replicas.js';

killReplicasSuite('external');
