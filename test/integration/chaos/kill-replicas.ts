/**
 * Issue 8: the orchestrator killed with SIGKILL repeatedly under concurrent PUT / overwrite / DELETE /
 * multipart load with placement.replicas = 2 over three backends (two s3rvers and an fs backend), on the
 * embedded PostgreSQL (the orchestrator's own server in its data directory: each restart takes over the
 * postmaster the killed process left) and on PostgreSQL (the machine's server): 5 kills on each engine.
 * After the last restart and convergence: no anomaly in the checker's history (every acknowledged write
 * reads back byte-exact — values are self-identifying and checked against their digest — and no read
 * sees an older value), every key answers, the queue drains, every live version holds 2 live copies, the
 * ledger is exact, no stray bytes, and fsck over the database and the backends finds zero orphans, zero
 * missing or wrong-size copies and zero counter drift. Longer runs: `npm run chaos -- --replicas 2`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatResult } from '../../../src/check/checker.js';
import { formatChaos, runChaos } from '../../../bench/chaos-run.js';

const KILLS = 5;

/** The suite for one engine; each engine has its own file, so each gets the runner's per-file time budget. */
export function killReplicasSuite(db: 'embedded' | 'external'): void {
  describe(`chaos: ${KILLS} SIGKILLs of the orchestrator with replicas=2 on ${db === 'embedded' ? 'the embedded PostgreSQL' : 'PostgreSQL'}`, () => {
    it('every acknowledged write reads back, fsck finds nothing, every version has 2 copies', { timeout: 480_000 }, async () => {
      const log: string[] = [];
      const started = Date.now();
      const r = await runChaos({
        nemeses: ['kill'],
        maxFaults: KILLS,
        gap: [500, 1200],
        // A restart takes 3 s on a quiet machine and up to 40 s at load 25 (module loading): each kill waits
        // for 12 acknowledged writes after the previous restart, so the load runs between kills.
        okWritesBetweenFaults: 12,
        // The load ends 2 s after the last restart; 280 s is only the bound.
        endAfterFaults: true,
        timeMs: 280_000,
        clients: 4,
        keys: 5,
        db,
        instances: 1,
        replicas: 2,
        multipart: true,
        large: false,
        convergeTimeoutMs: 45_000,
        log: (line) => log.push(line),
      });
      const report = formatChaos(r, `kill-replicas.test.ts (${db})`) + log.join('\n');
      // The figures (operations by outcome, convergence, fsck) as TAP diagnostics.
      const summary = formatChaos(r, `kill-replicas.test.ts (${db})`).split('\n').filter((l) => /^(duration|convergence|  replicas|  fsck|  deferred|operations|anomalies|writes of)/.test(l));
      console.log(`# ${db}: ${r.ops} operations, ${r.faults.length} kills, ${((Date.now() - started) / 1000).toFixed(0)} s\n${summary.map((l) => `# ${l}`).join('\n')}`);
      assert.equal(r.faults.length, KILLS, report);
      assert.ok(r.faults.every((f) => f.nemesis === 'kill'), report);
      assert.deepEqual(r.check.anomalies, [], formatResult(r.check));
      assert.ok(r.finalReadsAnswered, report);
      assert.deepEqual(r.convergence.problems, [], report);
      const f = r.convergence.fsck;
      assert.ok(f, report);
      assert.equal(f.orphans.count, 0, report);
      assert.equal(f.missing.count + f.wrongSize.count, 0, report);
      assert.equal(f.backendCounters.count + f.bucketCounters.count, 0, report);
      assert.equal(f.backends.length, 3, report);
      assert.ok(f.backends.every((b) => !b.error), report);
      // Versions whose repair a killed instance had claimed wait for its lease; every other has 2 copies.
      assert.ok(r.convergence.replicas.versions > 0, report);
      // The run did something worth checking: acknowledged writes, deletes, multipart, reads that saw values.
      assert.ok((r.check.counts['put']?.ok ?? 0) >= 10, report);
      assert.ok((r.check.counts['delete']?.ok ?? 0) >= 1, report);
      assert.ok(r.history.filter((o) => o.kind === 'get' && o.seen?.write).length >= 10, report);
    });
  });
}
