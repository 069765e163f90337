/**
 * `s3-orchestrator check`: runs the consistency checker's load against an existing S3 endpoint (an
 * orchestrator deployment, or any S3 provider) without injecting faults, then reads every key once more
 * after the load, checks the history and prints the anomalies with the operations that show them.
 * Everything happens under a fresh key prefix, which is emptied at the end (unless --keep).
 */
import { writeFileSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { checkHistory, formatResult, type CheckResult } from './checker.js';
import { historyFromJsonl, historyToJsonl } from './history.js';
import { Workload } from './workload.js';

export const CHECK_USAGE = `usage: s3-orchestrator check --endpoint URL --bucket B [--access-key K --secret-key S] [options]

Runs concurrent clients doing PUT, GET, HEAD, DELETE, CopyObject, ListObjectsV2 and multipart uploads on a
few keys under a fresh prefix of the bucket, records every operation, reads every key again once the load
stops, and checks the history for read-after-write and delete consistency: stale reads, lost writes,
deleted objects that come back, values never written, short or mixed bodies, listings that miss or
invent keys. Exit status 0: no anomaly; 1: anomalies (printed with the operations that show them) or
keys that stayed unreadable; 2: usage.

  --endpoint URL       S3 endpoint (several, comma-separated: instances of one deployment)
  --bucket B           an existing bucket the credentials may write
  --access-key K       default $AWS_ACCESS_KEY_ID
  --secret-key S       default $AWS_SECRET_ACCESS_KEY
  --region R           default $AWS_REGION or us-east-1
  --time DURATION      how long the load runs (default 60s; e.g. 90s, 5m)
  --clients N          concurrent clients (default 16)
  --keys N             keys written (default 8), plus 2 copy destinations
  --timeout DURATION   per request (default 30s); a request still running then has an unknown outcome
  --no-multipart       no multipart uploads (they send 5 MiB parts)
  --no-large           no PUTs over 128 KiB
  --virtual-hosted     bucket.host addressing instead of path-style
  --history FILE       write the recorded history (JSON lines) to FILE
  --replay FILE        check a history written by --history instead of running a load
  --keep               leave the run's objects in the bucket
  --json               print the result as JSON
`;

/** "60s", "5m", "500ms", "2h" or a number of seconds. */
export function parseDurationMs(s: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) throw new Error(`${flag}: "${s}" is not a duration (e.g. 90s, 5m)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}

function positive(s: string | undefined, flag: string, dflt: number): number {
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: "${s}" is not a positive integer`);
  return n;
}

export async function runCheckCommand(args: string[]): Promise<number> {
  let v: Record<string, string | boolean | undefined>;
  try {
    ({ values: v } = parseArgs({
      args,
      options: {
        endpoint: { type: 'string' },
        bucket: { type: 'string' },
        'access-key': { type: 'string' },
        'secret-key': { type: 'string' },
        region: { type: 'string' },
        time: { type: 'string' },
        clients: { type: 'string' },
        keys: { type: 'string' },
        timeout: { type: 'string' },
        'no-multipart': { type: 'boolean' },
        'no-large': { type: 'boolean' },
        'virtual-hosted': { type: 'boolean' },
        history: { type: 'string' },
        replay: { type: 'string' },
        keep: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`check: ${err instanceof Error ? err.message : String(err)}\n\n${CHECK_USAGE}`);
    return 2;
  }
  if (v['help']) {
    process.stdout.write(CHECK_USAGE);
    return 0;
  }
  const print = (r: CheckResult, extra: Record<string, unknown> = {}) =>
    process.stdout.write(v['json'] ? JSON.stringify({ ...extra, ...r }, null, 1) + '\n' : formatResult(r));

  if (typeof v['replay'] === 'string') {
    const r = checkHistory(historyFromJsonl(readFileSync(v['replay'], 'utf8')));
    print(r);
    return r.anomalies.length ? 1 : 0;
  }

  // The SDK's notice about Node 22 is for whoever upgrades it (the versions are pinned), not for the operator.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  let w: Workload;
  let durationMs: number;
  try {
    const endpoint = v['endpoint'] as string | undefined;
    const bucket = v['bucket'] as string | undefined;
    const accessKeyId = (v['access-key'] as string | undefined) ?? process.env['AWS_ACCESS_KEY_ID'];
    const secretAccessKey = (v['secret-key'] as string | undefined) ?? process.env['AWS_SECRET_ACCESS_KEY'];
    if (!endpoint || !bucket) throw new Error('--endpoint and --bucket are required');
    if (!accessKeyId || !secretAccessKey) throw new Error('--access-key and --secret-key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) are required');
    durationMs = parseDurationMs((v['time'] as string | undefined) ?? '60s', '--time');
    const region = (v['region'] as string | undefined) ?? process.env['AWS_REGION'] ?? 'us-east-1';
    const targets = endpoint.split(',').map((e) => {
      if (!/^https?:\/\/[^/]+/.test(e.trim())) throw new Error(`--endpoint: "${e}" is not an http(s) URL`);
      return { endpoint: e.trim(), bucket, region, accessKeyId, secretAccessKey, pathStyle: !v['virtual-hosted'] };
    });
    w = new Workload({
      targets,
      clients: positive(v['clients'] as string | undefined, '--clients', 16),
      keys: positive(v['keys'] as string | undefined, '--keys', 8),
      copyKeys: 2,
      durationMs,
      opTimeoutMs: parseDurationMs((v['timeout'] as string | undefined) ?? '30s', '--timeout'),
      multipart: !v['no-multipart'],
      large: !v['no-large'],
      progress: (line) => process.stderr.write(`check: ${line}\n`),
    });
  } catch (err) {
    process.stderr.write(`check: ${err instanceof Error ? err.message : String(err)}\n\n${CHECK_USAGE}`);
    return 2;
  }
  try {
    process.stderr.write(`check: ${(durationMs / 1000).toFixed(0)} s of load under ${w.prefix}\n`);
    await w.run();
    process.stderr.write(`check: load done (${w.status()}); reading every key once more\n`);
    const converged = await w.finalReads();
    w.rec.closeOpen();
    if (typeof v['history'] === 'string') writeFileSync(v['history'], historyToJsonl(w.rec.ops));
    const r = checkHistory(w.rec.ops);
    print(r, { prefix: w.prefix, finalReadsAnswered: converged });
    if (!converged) process.stdout.write('some keys stayed unreadable after the load (see the failed final reads in the history)\n');
    if (!v['keep']) await w.cleanup();
    return r.anomalies.length || !converged ? 1 : 0;
  } finally {
    w.close();
  }
}
