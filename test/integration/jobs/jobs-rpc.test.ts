/**
 * JobService through the generated Connect client against a real orchestrator (PostgreSQL, s3rver and fs
 * backends): every RPC's success and its bad-input answers, drains, pause/resume/cancel, rebalance
 * plan/apply, and a bucket purge.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { Code, ConnectError } from '@connectrpc/connect';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { FieldViolationSchema } from '../../../gen/s3o/admin/v1/backends_pb.js';
import * as pb from '../../../gen/s3o/admin/v1/jobs_pb.js';
import { JobKind, JobState } from '../../../gen/s3o/admin/v1/jobs_pb.js';
import { JobControl } from '../../../src/core/job-kinds.js';
import { engines } from '../../harness/db.js';
import { ADMIN_TOKEN, body, getObject, putObject, settleCleanup, startJobsFixture, waitJob, type JobsFixture } from './fixture.js';

const hasPostgres = (await engines()).includes('postgres');

/** A grpc-js method definition whose (de)serializers are protobuf-es toBinary/fromBinary. */
function method<I extends DescMessage, O extends DescMessage>(name: string, input: I, output: O, responseStream = false) {
  return {
    path: `/s3o.admin.v1.JobService/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: (m: MessageShape<I>) => Buffer.from(toBinary(input, m)),
    requestDeserialize: (b: Buffer) => fromBinary(input, b),
    responseSerialize: (m: MessageShape<O>) => Buffer.from(toBinary(output, m)),
    responseDeserialize: (b: Buffer) => fromBinary(output, b),
  };
}

const GrpcJobs = grpc.makeGenericClientConstructor(
  {
    ListJobs: method('ListJobs', pb.ListJobsRequestSchema, pb.ListJobsResponseSchema),
    GetJob: method('GetJob', pb.GetJobRequestSchema, pb.GetJobResponseSchema),
    WatchJob: method('WatchJob', pb.WatchJobRequestSchema, pb.WatchJobResponseSchema, true),
    PauseJob: method('PauseJob', pb.PauseJobRequestSchema, pb.PauseJobResponseSchema),
    DrainBackend: method('DrainBackend', pb.DrainBackendRequestSchema, pb.DrainBackendResponseSchema),
    CancelDrain: method('CancelDrain', pb.CancelDrainRequestSchema, pb.CancelDrainResponseSchema),
    PlanRebalance: method('PlanRebalance', pb.PlanRebalanceRequestSchema, pb.PlanRebalanceResponseSchema),
  },
  'JobService',
);

type Unary = (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void;

function unary<T>(client: grpc.Client, name: string, req: unknown): Promise<T> {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${ADMIN_TOKEN}`);
  const fn = (client as unknown as Record<string, Unary>)[name]!.bind(client);
  return new Promise((resolve, reject) => fn(req, md, (err, res) => (err ? reject(err) : resolve(res as T))));
}

async function rejects(p: Promise<unknown>, code: Code, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    const e = ConnectError.from(err);
    assert.equal(Code[e.code], Code[code], e.rawMessage);
    if (pattern) assert.match(e.rawMessage, pattern);
    return true;
  });
}

async function copiesOn(f: JobsFixture, backend: string): Promise<number> {
  const { rows } = await f.orchs[0]!.db.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM object_copies WHERE backend = $1`, [backend]);
  return Number(rows[0]!.n);
}

describe('JobService', { skip: hasPostgres ? false : 'PostgreSQL not reachable' }, () => {
  let f: JobsFixture;
  const keys = Array.from({ length: 40 }, (_, i) => `obj/${String(i).padStart(3, '0')}`);

  before(async () => {
    f = await startJobsFixture({ strategy: 'spread', cleanupDelayMs: 0, buckets: ['doomed'] });
    // Spread places them over the three backends.
    for (const k of keys) await putObject(f.s3(), k, body(k, 1, 1000 + keys.indexOf(k) * 37));
  });
  after(async () => f?.stop());

  test('ListJobs and GetJob answer for no jobs; bad input is INVALID_ARGUMENT or NOT_FOUND', async () => {
    const c = f.jobs();
    assert.deepEqual((await c.listJobs({}, f.auth)).jobs, []);
    await rejects(c.listJobs({ limit: 5000 }, f.auth), Code.InvalidArgument, /limit/);
    await rejects(c.listJobs({ kind: 99 as JobKind }, f.auth), Code.InvalidArgument, /kind/);
    await rejects(c.listJobs({ states: [42 as JobState] }, f.auth), Code.InvalidArgument, /states/);
    await rejects(c.getJob({ id: 0n }, f.auth), Code.InvalidArgument, /id/);
    await rejects(c.getJob({ id: 12345n }, f.auth), Code.NotFound, /12345/);
    await rejects(c.cancelJob({ id: 0n }, f.auth), Code.InvalidArgument, /id/);
    await rejects(c.pauseJob({ id: 777n }, f.auth), Code.NotFound);
    await rejects(c.resumeJob({ id: 777n }, f.auth), Code.NotFound);
    await rejects(c.cancelJob({ id: 777n }, f.auth), Code.NotFound);
    await rejects(c.drainBackend({ backend: '' }, f.auth), Code.InvalidArgument, /backend/);
    const violation = async (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: unknown) => ConnectError.from(e).findDetails(FieldViolationSchema)[0]?.field,
      );
    assert.equal(await violation(c.drainBackend({ backend: '' }, f.auth)), 'backend');
    assert.equal(await violation(c.getJob({ id: 0n }, f.auth)), 'id');
    assert.equal(await violation(c.listJobs({ limit: 5000 }, f.auth)), 'limit');
    await rejects(c.drainBackend({ backend: 'nope' }, f.auth), Code.NotFound, /nope/);
    await rejects(c.cancelDrain({ backend: '' }, f.auth), Code.InvalidArgument, /backend/);
    await rejects(c.cancelDrain({ backend: 'nope' }, f.auth), Code.NotFound);
    await rejects(c.cancelDrain({ backend: 's3-1' }, f.auth), Code.FailedPrecondition, /not draining/);
    await rejects(c.planRebalance({ maxMoves: 1_000_000 }, f.auth), Code.InvalidArgument, /max_moves/);
    await rejects(c.getJob({ id: 1n }), Code.Unauthenticated);
    const stream = c.watchJob({ id: 999n }, f.auth);
    await rejects((async () => { for await (const _ of stream) { /* nothing */ } })(), Code.NotFound);
    const bad = c.watchJob({ id: 1n, interval: { seconds: 0n, nanos: 1_000_000 } }, f.auth);
    await rejects((async () => { for await (const _ of bad) { /* nothing */ } })(), Code.InvalidArgument, /interval/);
  });

  test('DrainBackend moves every copy off the backend; WatchJob reports progress until done', async () => {
    const c = f.jobs();
    const before = await copiesOn(f, 'fs-1');
    assert.ok(before > 0, 'spread put copies on fs-1');
    const { job, alreadyDraining } = await c.drainBackend({ backend: 'fs-1' }, f.auth);
    assert.equal(alreadyDraining, false);
    assert.equal(job!.kind, JobKind.DRAIN);
    assert.equal(job!.target, 'fs-1');
    assert.equal(job!.state, JobState.RUNNING);
    assert.match(job!.createdBy, /admin-api/);
    const again = await c.drainBackend({ backend: 'fs-1' }, f.auth);
    assert.equal(again.alreadyDraining, true);
    assert.equal(again.job!.id, job!.id);

    const seen: JobState[] = [];
    let last;
    for await (const m of c.watchJob({ id: job!.id, interval: { seconds: 0n, nanos: 100_000_000 } }, f.auth)) {
      seen.push(m.job!.state);
      last = m.job!;
    }
    assert.equal(last!.state, JobState.DONE, last!.message);
    assert.ok(last!.finishedAt);
    assert.equal(last!.progress!.itemsDone, BigInt(before));
    assert.equal(last!.progress!.itemsTotal, BigInt(before));
    assert.equal(last!.progress!.bytesDone, last!.progress!.bytesTotal);
    assert.equal(last!.progress!.planned, true);
    assert.equal(await copiesOn(f, 'fs-1'), 0);
    for (const k of keys) assert.equal((await getObject(f.s3(), k)).compare(body(k, 1, 1000 + keys.indexOf(k) * 37)), 0, k);

    const listed = await c.listJobs({ kind: JobKind.DRAIN, states: [JobState.DONE] }, f.auth);
    assert.deepEqual(listed.jobs.map((j) => j.id), [job!.id]);
    assert.deepEqual((await c.listJobs({ kind: JobKind.REBALANCE }, f.auth)).jobs, []);
    await rejects(c.pauseJob({ id: job!.id }, f.auth), Code.FailedPrecondition, /done/);
    await rejects(c.cancelJob({ id: job!.id }, f.auth), Code.FailedPrecondition, /done/);
    await rejects(c.resumeJob({ id: job!.id }, f.auth), Code.FailedPrecondition, /done/);

    // A drained backend stays draining; CancelDrain (no open job left) makes it active again.
    const { rows } = await f.orchs[0]!.db.query<{ state: string }>(`SELECT state FROM backends WHERE name = 'fs-1'`);
    assert.equal(rows[0]!.state, 'draining');
    const cancelled = await c.cancelDrain({ backend: 'fs-1' }, f.auth);
    assert.equal(cancelled.job, undefined);
    const { rows: after } = await f.orchs[0]!.db.query<{ state: string }>(`SELECT state FROM backends WHERE name = 'fs-1'`);
    assert.equal(after[0]!.state, 'active');
  });

  test('through @grpc/grpc-js: unary calls, the WatchJob stream and error codes', async () => {
    const c = new GrpcJobs(new URL(f.adminUrl()).host, grpc.credentials.createInsecure());
    try {
      const list = await unary<MessageShape<typeof pb.ListJobsResponseSchema>>(c, 'ListJobs', create(pb.ListJobsRequestSchema, { kind: JobKind.DRAIN }));
      assert.equal(list.jobs.length, 1);
      const id = list.jobs[0]!.id;
      const got = await unary<MessageShape<typeof pb.GetJobResponseSchema>>(c, 'GetJob', create(pb.GetJobRequestSchema, { id }));
      assert.equal(got.job!.state, JobState.DONE);
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${ADMIN_TOKEN}`);
      const stream = (c as unknown as Record<string, (req: unknown, md: grpc.Metadata) => grpc.ClientReadableStream<MessageShape<typeof pb.WatchJobResponseSchema>>>)
        .WatchJob!.call(c, create(pb.WatchJobRequestSchema, { id }), md);
      const reports: MessageShape<typeof pb.WatchJobResponseSchema>[] = [];
      for await (const r of stream) reports.push(r as MessageShape<typeof pb.WatchJobResponseSchema>);
      assert.equal(reports.length, 1, 'a finished job: one report, then the stream ends');
      assert.equal(reports[0]!.job!.progress!.itemsDone, got.job!.progress!.itemsDone);
      await assert.rejects(unary(c, 'GetJob', create(pb.GetJobRequestSchema, { id: 4242n })), { code: grpc.status.NOT_FOUND });
      await assert.rejects(unary(c, 'GetJob', create(pb.GetJobRequestSchema, { id: 0n })), { code: grpc.status.INVALID_ARGUMENT });
      await assert.rejects(unary(c, 'PauseJob', create(pb.PauseJobRequestSchema, { id })), { code: grpc.status.FAILED_PRECONDITION });
      await assert.rejects(unary(c, 'DrainBackend', create(pb.DrainBackendRequestSchema, { backend: '' })), { code: grpc.status.INVALID_ARGUMENT });
      await assert.rejects(unary(c, 'CancelDrain', create(pb.CancelDrainRequestSchema, { backend: 's3-2' })), { code: grpc.status.FAILED_PRECONDITION });
      const plan = await unary<MessageShape<typeof pb.PlanRebalanceResponseSchema>>(c, 'PlanRebalance', create(pb.PlanRebalanceRequestSchema, { maxMoves: 1 }));
      assert.equal(plan.backends.length, 3);
    } finally {
      c.close();
    }
  });

  test('PlanRebalance is a dry run; ApplyRebalance makes it happen and is refused while one is open', async () => {
    const c = f.jobs();
    await settleCleanup(f.orchs);
    const plan = await c.planRebalance({ maxMoves: 5 }, f.auth);
    assert.equal(plan.strategy, 'spread');
    assert.deepEqual(plan.backends.map((b) => b.name), ['s3-1', 's3-2', 'fs-1']);
    const fs1 = plan.backends.find((b) => b.name === 'fs-1')!;
    assert.equal(fs1.bytesBefore, 0n, 'fs-1 was drained');
    assert.ok(fs1.bytesAfter > 0n && fs1.targetBytes > 0n);
    assert.ok(plan.moveCount > 5n && plan.moves.length === 5, `${plan.moveCount} moves, ${plan.moves.length} listed`);
    for (const m of plan.moves) assert.equal(m.to, 'fs-1');
    const total = plan.backends.reduce((n, b) => n + b.bytesBefore, 0n);
    assert.equal(plan.backends.reduce((n, b) => n + b.bytesAfter, 0n), total);
    assert.equal(await copiesOn(f, 'fs-1'), 0, 'a plan moves nothing');

    const { job } = await c.applyRebalance({}, f.auth);
    assert.equal(job!.kind, JobKind.REBALANCE);
    await rejects(c.applyRebalance({}, f.auth), Code.FailedPrecondition, /already/);
    const done = await waitJob(c, job!.id, f.auth);
    assert.equal(done.state, JobState.DONE, done.message);
    assert.equal(done.progress!.itemsDone, plan.moveCount);
    const { rows } = await f.orchs[0]!.db.query<{ backend: string; bytes: number }>(
      `SELECT backend, sum(size)::int8 AS bytes FROM object_copies WHERE state = 'live' GROUP BY backend`,
    );
    const after = new Map(rows.map((r) => [r.backend, BigInt(r.bytes)]));
    for (const b of plan.backends) assert.equal(after.get(b.name) ?? 0n, b.bytesAfter, b.name);
    // Balanced now: a new plan moves nothing.
    assert.equal((await c.planRebalance({}, f.auth)).moveCount, 0n);
  });

  test('PauseJob holds the work back, ResumeJob continues it, CancelJob stops it', async () => {
    const c = f.jobs();
    await settleCleanup(f.orchs);
    const { job } = await c.drainBackend({ backend: 's3-1' }, f.auth);
    const paused = (await c.pauseJob({ id: job!.id }, f.auth)).job!;
    assert.equal(paused.state, JobState.PAUSED);
    assert.equal((await c.pauseJob({ id: job!.id }, f.auth)).job!.state, JobState.PAUSED, 'pausing twice is a no-op');
    // What was running when the pause came finishes; then nothing moves.
    await new Promise((r) => setTimeout(r, 1500));
    const a = (await c.getJob({ id: job!.id }, f.auth)).job!;
    await new Promise((r) => setTimeout(r, 1500));
    const b = (await c.getJob({ id: job!.id }, f.auth)).job!;
    assert.equal(b.state, JobState.PAUSED);
    assert.equal(b.progress!.itemsDone, a.progress!.itemsDone, 'no progress while paused');
    assert.equal(b.progress!.running, 0n);

    const resumed = (await c.resumeJob({ id: job!.id }, f.auth)).job!;
    assert.equal(resumed.state, JobState.RUNNING);
    assert.equal((await c.resumeJob({ id: job!.id }, f.auth)).job!.state, JobState.RUNNING, 'resuming a running job is a no-op');
    const done = await waitJob(c, job!.id, f.auth);
    assert.equal(done.state, JobState.DONE, done.message);
    assert.equal(await copiesOn(f, 's3-1'), 0);

    // Cancel: a new drain of another backend, paused at once so work is still queued, then cancelled.
    await c.cancelDrain({ backend: 's3-1' }, f.auth);
    const second = (await c.drainBackend({ backend: 's3-2' }, f.auth)).job!;
    await c.pauseJob({ id: second.id }, f.auth);
    const cancelling = (await c.cancelJob({ id: second.id }, f.auth)).job!;
    assert.ok([JobState.CANCELLING, JobState.CANCELLED].includes(cancelling.state));
    const ended = await waitJob(c, second.id, f.auth);
    assert.equal(ended.state, JobState.CANCELLED);
    assert.equal(ended.progress!.queued, 0n);
    assert.equal(ended.progress!.itemsDone, ended.progress!.itemsTotal, 'totals show what was done');
    assert.equal((await c.cancelJob({ id: second.id }, f.auth)).job!.state, JobState.CANCELLED, 'cancelling twice is a no-op');
    await rejects(c.resumeJob({ id: second.id }, f.auth), Code.FailedPrecondition, /cancelled/);
    // The backend is still draining (CancelJob cancels the job only); CancelDrain makes it active.
    const cd = await c.cancelDrain({ backend: 's3-2' }, f.auth);
    assert.equal(cd.job, undefined);
    for (const k of keys) assert.equal((await getObject(f.s3(), k)).compare(body(k, 1, 1000 + keys.indexOf(k) * 37)), 0, k);
    const all = (await c.listJobs({ limit: 2 }, f.auth)).jobs;
    assert.equal(all.length, 2);
    assert.ok(all[0]!.id > all[1]!.id, 'newest first');
    const next = (await c.listJobs({ beforeId: all[1]!.id }, f.auth)).jobs;
    assert.ok(next.every((j) => j.id < all[1]!.id) && next.length > 0);
    assert.ok(timestampDate(all[0]!.createdAt!) <= new Date());
  });

  test('a bucket purge deletes every object, then the bucket', async () => {
    const db = f.orchs[0]!.db;
    for (let i = 0; i < 30; i++) {
      await f.s3().send(new PutObjectCommand({ Bucket: 'doomed', Key: `k${i}`, Body: body(`k${i}`, 1, 500) }));
    }
    const control = new JobControl(db, { strategy: 'spread', backendOrder: () => [], cleanupDelayMs: 0, wake: () => f.orchs[0]!.wakeWorkers() });
    const job = await control.purgeBucket('doomed', 'test');
    assert.equal(job.kind, 'purge-bucket');
    assert.equal(job.progress.itemsTotal, 30, 'the estimate is the bucket count');
    await assert.rejects(control.purgeBucket('no-such-bucket'), /does not exist/);
    const done = await waitJob(f.jobs(), BigInt(job.id), f.auth);
    assert.equal(done.state, JobState.DONE, done.message);
    assert.equal(done.progress!.itemsDone, 30n);
    const { rows } = await db.query(`SELECT 1 FROM buckets WHERE name = 'doomed'`);
    assert.equal(rows.length, 0);
    // Every instance hears of the deletion (change bus) within a second or so.
    const until = Date.now() + 5_000;
    let answer: unknown;
    while (Date.now() < until) {
      answer = await f.s3().send(new ListObjectsV2Command({ Bucket: 'doomed' })).then(() => 'listed', (e: unknown) => e);
      if (answer !== 'listed') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(String((answer as Error).name ?? answer), /NoSuchBucket|AccessDenied/);
  });
});
