/**
 * s3o_backend_used_bytes is read from the database when /metrics is scraped: after a PUT the scrape shows
 * the stored bytes on the backend that holds them, without any admin call first.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';

let t: TestOrchestrator;
before(async () => {
  t = await startTestOrchestrator({ s3rvers: 1, fsBackends: 1, workers: false }); // queued tasks stay queued
});
after(() => t?.stop());

async function usedBytes(backend: string): Promise<number | undefined> {
  const text = await (await fetch(`${t.adminUrl}/metrics`)).text();
  const m = new RegExp(`^s3o_backend_used_bytes\\{backend="${backend}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

test('Metrics_backend_used_bytes_follows_the_database_at_scrape_time', async () => {
  assert.equal(await usedBytes('s3-1'), 0);
  await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'm/one', Body: Buffer.alloc(1234, 1) }));
  assert.equal(await usedBytes('s3-1'), 1234);
  assert.equal(await usedBytes('fs-1'), 0);
});

test('Metrics_task_queue_and_backend_health_are_scraped', async () => {
  await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'm/two', Body: 'x' }));
  await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'm/two', Body: 'y' })); // the first copy's deletion is queued
  const text = await (await fetch(`${t.adminUrl}/metrics`)).text();
  assert.match(text, /^s3o_task_queue\{kind="delete-copy",state="queued"\} [1-9]\d*$/m, 'the overwrite queued a delete-copy task');
  assert.match(text, /^s3o_backend_health\{backend="s3-1",state="healthy"\} 1$/m);
  assert.match(text, /^s3o_backend_health\{backend="s3-1",state="unavailable"\} 0$/m);
});
