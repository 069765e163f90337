/**
 * Drains a backend through the admin API with the generated Connect client and follows the job to its
 * end, printing one progress line per report. Exits 0 when the drain is done, 3 if it failed, 4 if it was
 * cancelled, 1 if a call failed.
 *
 *   node --import tsx examples/drain-backend.ts [--server http://127.0.0.1:9001] [--token T] BACKEND
 *
 * The token defaults to the S3O_ADMIN_TOKEN environment variable. See docs/admin-api.md ("Jobs").
 */
import { parseArgs } from 'node:util';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { JobService, JobState } from '../gen/s3o/admin/v1/jobs_pb.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { server: { type: 'string', default: 'http://127.0.0.1:9001' }, token: { type: 'string' } },
});
const backend = positionals[0];
if (!backend) {
  process.stderr.write('usage: drain-backend.ts [--server URL] [--token T] BACKEND\n');
  process.exit(2);
}
const token = values.token ?? process.env.S3O_ADMIN_TOKEN;
const headers = new Headers(token ? { authorization: `Bearer ${token}` } : {});

// Connect protocol over HTTP/1.1; createGrpcTransport (HTTP/2) works against the same port too.
const jobs = createClient(JobService, createConnectTransport({ baseUrl: values.server, httpVersion: '1.1' }));

try {
  const { job, alreadyDraining } = await jobs.drainBackend({ backend }, { headers });
  console.log(`${alreadyDraining ? 'following' : 'started'} drain job ${job!.id} of ${backend}`);
  let last = job!;
  // WatchJob streams a report every interval until the job ends.
  for await (const { job: j } of jobs.watchJob({ id: job!.id, interval: { seconds: 0n, nanos: 500_000_000 } }, { headers })) {
    const p = j!.progress!;
    console.log(
      `${JobState[j!.state].toLowerCase()}: ${p.itemsDone}/${p.itemsTotal} copies, ${p.bytesDone}/${p.bytesTotal} bytes, ` +
        `${Math.round(p.bytesPerSecond)} B/s${p.errors > 0n ? `, ${p.errors} errors (${p.lastError})` : ''}`,
    );
    last = j!;
  }
  console.log(last.message);
  process.exit(last.state === JobState.DONE ? 0 : last.state === JobState.FAILED ? 3 : 4);
} catch (err) {
  const e = ConnectError.from(err);
  console.error(`drain failed: ${Code[e.code]}: ${e.rawMessage}`);
  process.exit(1);
}
