/**
 * Shared by the aws cli end-to-end files (aws-cli-*.test.ts): a real orchestrator, a temp directory,
 * two AWS config files, and /usr/bin/aws run with a clean environment. The suite is split into several
 * files (each with its own orchestrator) so that no file runs near the per-file timeout: every aws
 * invocation starts a Python interpreter (about a second here, several under load).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { TEST_CREDS, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';

export const AWS = '/usr/bin/aws';
/** The `skip` option of each describe: a message when the Debian aws cli is not installed. */
export const skip = existsSync(AWS) ? false : `${AWS} not installed (Debian package awscli; .ci/run installs it)`;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface AwsCli {
  t: TestOrchestrator;
  dir: string;
  /** AWS_CONFIG_FILE with multipart_threshold 1GB (single PUTs). */
  singlePutConfig: string;
  /** AWS_CONFIG_FILE with the cli's defaults (8 MiB multipart threshold and parts). */
  defaultConfig: string;
  /** The environment every invocation gets: only our credentials, region and config file. */
  env(opts?: { config?: string; creds?: { accessKeyId: string; secretAccessKey: string } }): NodeJS.ProcessEnv;
  aws(args: string[], opts?: { config?: string; creds?: { accessKeyId: string; secretAccessKey: string } }): Promise<CliResult>;
  /** Runs aws and asserts exit code 0; returns stdout. */
  ok(args: string[], opts?: { config?: string }): Promise<string>;
  objectBytes(key: string): Promise<Buffer>;
  exists(key: string): Promise<boolean>;
  close(): Promise<void>;
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export async function startAwsCli(): Promise<AwsCli> {
  const t = await startTestOrchestrator();
  const dir = await mkdtemp(path.join(os.tmpdir(), 's3o-awscli-'));
  const singlePutConfig = path.join(dir, 'config-single');
  const defaultConfig = path.join(dir, 'config-default');
  await writeFile(singlePutConfig, '[default]\nregion = us-east-1\ns3 =\n    multipart_threshold = 1GB\n    multipart_chunksize = 1GB\n');
  await writeFile(defaultConfig, '[default]\nregion = us-east-1\n');
  const cli: AwsCli = {
    t,
    dir,
    singlePutConfig,
    defaultConfig,
    env(opts = {}) {
      const creds = opts.creds ?? TEST_CREDS;
      return {
        PATH: '/usr/bin:/bin',
        HOME: dir,
        LANG: 'C.UTF-8',
        AWS_ACCESS_KEY_ID: creds.accessKeyId,
        AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
        AWS_DEFAULT_REGION: 'us-east-1',
        AWS_CONFIG_FILE: opts.config ?? singlePutConfig,
        AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'no-credentials'),
        AWS_PAGER: '',
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_MAX_ATTEMPTS: '1',
      };
    },
    aws(args, opts = {}) {
      return new Promise((resolve) => {
        execFile(AWS, ['--endpoint-url', t.endpoint, ...args], { env: cli.env(opts), maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
          const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
          resolve({ code, stdout, stderr });
        });
      });
    },
    async ok(args, opts) {
      const r = await cli.aws(args, opts);
      assert.equal(r.code, 0, `aws ${args.join(' ')} failed: ${r.stderr}`);
      return r.stdout;
    },
    async objectBytes(key) {
      const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: key }));
      return Buffer.from(await got.Body!.transformToByteArray());
    },
    async exists(key) {
      try {
        await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: key }));
        return true;
      } catch (err) {
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
        throw err;
      }
    },
    async close() {
      await t.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return cli;
}
