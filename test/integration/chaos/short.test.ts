/**
 * A short chaos run, part of `npm test`: the checker's load against an orchestrator process on the
 * machine's PostgreSQL while it is SIGKILLed and restarted once and one s3rver backend is SIGKILLed and
 * restarted once. No anomaly in the history, every key readable after the faults, and the deployment
 * converges: no pending write, the task queue drained (claims of the killed instance excepted: they are
 * reclaimed when their lease expires), the quota ledger exact, no stray bytes on any backend.
 * Longer runs of every nemesis: `npm run chaos` (docs/reliability.md).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatResult } from '../../../src/check/checker.js';
import { formatChaos, runChaos } from '../../../bench/chaos-run.js';

describe('chaos (short): SIGKILL of the orchestrator and of a backend under load', () => {
  it('no anomaly, and the deployment converges', async () => {
    const log: string[] = [];
    const r = await runChaos({
      nemeses: ['kill', 'backend'],
      maxFaults: 2,
      gap: [1500, 3000],
      // Each fault waits for 8 acknowledged writes since the previous restart (a restart takes 3 s on a quiet
      // machine, 30 s at load 20), and the load ends 2 s after the second fault; 150 s is only the bound.
      okWritesBetweenFaults: 8,
      endAfterFaults: true,
      timeMs: 150_000,
      clients: 6,
      keys: 6,
      db: 'external',
      instances: 1,
      multipart: true,
      large: true,
      convergeTimeoutMs: 45_000,
      log: (line) => log.push(line),
    });
    const report = formatChaos(r, 'test/integration/chaos/short.test.ts') + log.join('\n');
    // The nemeses take turns: the SIGKILL comes first, then the backend.
    assert.deepEqual(r.faults.map((f) => f.nemesis), ['kill', 'backend'], report);
    assert.ok(r.faults.every((f) => f.nemesis === 'kill' || f.nemesis === 'backend'), report);
    assert.deepEqual(r.check.anomalies, [], formatResult(r.check));
    assert.ok(r.finalReadsAnswered, report);
    assert.deepEqual(r.convergence.problems, [], report);
    // The run did something worth checking: acknowledged writes, and reads that saw values.
    assert.ok((r.check.counts['put']?.ok ?? 0) >= 5, report);
    assert.ok(r.history.filter((o) => o.kind === 'get' && o.seen?.write).length >= 5, report);
  });
});
