'use strict';
/**
 * Runs one s3rver in its own process (started by test/harness/s3rver.ts with --openssl-legacy-provider, which
 * its ListObjectsV2 continuation tokens need on Node 20). Reports `{ port }` over IPC once listening and exits
 * when the parent goes away.
 *
 * Fixes over stock s3rver 3.7.1, so that tests see S3 semantics:
 * - PutObject writes the body straight to the live file, so an aborted or short upload left a truncated
 *   object visible to HEAD/GET/LIST. Here the body goes to a temp file that is renamed into place only once
 *   the request body completed.
 * - `Range: bytes=0-0` returned the whole object (`options.end || Infinity` treats end 0 as absent).
 * - ListObjects walked directories in name order, so `a/x` came before `a-b` although '-' < '/'; the walk
 *   here sorts directories as `name/` and object files by their key.
 * - A bad CompleteMultipartUpload (a part that was never uploaded) throws from a stream callback and would
 *   kill the process; an uncaughtException handler keeps it serving.
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { Transform } = require('node:stream');
const { pipeline } = require('node:stream/promises');
// utils.walk must be replaced before the store module loads: it destructures it at require time.
const utils = require('s3rver/lib/utils');
const OBJECT_SUFFIX = '._S3rver_object';
utils.walk = function* walk(dir, recurseFilter) {
  const entries = fs.readdirSync(dir).map((name) => {
    const filePath = path.posix.join(dir, name);
    const isDir = fs.statSync(filePath).isDirectory();
    const sortKey = isDir ? `${name}/` : name.endsWith(OBJECT_SUFFIX) ? name.slice(0, -OBJECT_SUFFIX.length) : name;
    return { filePath, isDir, sortKey: Buffer.from(sortKey, 'utf8') };
  });
  entries.sort((a, b) => Buffer.compare(a.sortKey, b.sortKey));
  for (const e of entries) {
    if (!e.isDir) yield e.filePath;
    else if (!recurseFilter || recurseFilter(e.filePath)) yield* walk(e.filePath, recurseFilter);
  }
};
const S3rver = require('s3rver');
const FilesystemStore = require('s3rver/lib/stores/filesystem');
const S3Object = require('s3rver/lib/models/object');

const [directory, bucketsArg] = process.argv.slice(2);
const dataDir = path.join(directory, 'data');
const tmpDir = path.join(directory, 'tmp');
fs.mkdirSync(dataDir, { recursive: true });
fs.mkdirSync(tmpDir, { recursive: true });

process.on('uncaughtException', (err) => {
  process.stderr.write(`s3rver-child: uncaught exception (kept alive): ${err && err.stack}\n`);
});
process.on('unhandledRejection', (err) => {
  process.stderr.write(`s3rver-child: unhandled rejection (kept alive): ${err && err.stack}\n`);
});
// The parent died without stop(): nobody else will remove the directory.
process.on('disconnect', () => {
  fs.rmSync(directory, { recursive: true, force: true });
  process.exit(0);
});

FilesystemStore.prototype.putObject = async function putObject(object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  const md5Context = crypto.createHash('md5');
  let size = 0;
  if (Buffer.isBuffer(object.content)) {
    md5Context.update(object.content);
    size = object.content.length;
  }
  const tmp = path.join(tmpDir, crypto.randomBytes(12).toString('hex'));
  try {
    if (Buffer.isBuffer(object.content)) {
      await fs.promises.writeFile(tmp, object.content);
    } else {
      // pipeline (unlike the stock .pipe chain) fails on an aborted request instead of hanging half-written.
      await pipeline(
        object.content,
        new Transform({
          transform(chunk, _enc, cb) {
            md5Context.update(chunk);
            size += chunk.length;
            cb(null, chunk);
          },
        }),
        fs.createWriteStream(tmp),
      );
      const expected = Number(object.content.headers && object.content.headers['content-length']);
      if (Number.isFinite(expected) && expected !== size) {
        throw new Error(`short body: ${size} of ${expected} bytes`);
      }
    }
    const md5 = md5Context.digest('hex');
    await fs.promises.mkdir(path.dirname(objectPath), { recursive: true });
    await this.putMetadata(object.bucket, object.key, object.metadata, md5);
    await fs.promises.rename(tmp, objectPath);
    return { size, md5 };
  } catch (err) {
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw err;
  }
};

FilesystemStore.prototype.getObject = async function getObject(bucket, key, options) {
  try {
    const metadata = await this.getMetadata(bucket, key);
    const lastByte = Math.max(0, Number(metadata['content-length']) - 1);
    const hasRange = options !== undefined && (options.start !== undefined || options.end !== undefined);
    const range = {
      start: (options && options.start) || 0,
      end: Math.min(options && options.end !== undefined ? options.end : Infinity, lastByte),
    };
    if (range.start < 0 || range.end < range.start) {
      const object = new S3Object(bucket, key, null, metadata);
      if (hasRange) object.range = range;
      return object;
    }
    const content = await new Promise((resolve, reject) => {
      const stream = fs
        .createReadStream(this.getResourcePath(bucket, key, 'object'), range)
        .on('error', reject)
        .on('open', () => resolve(stream));
    });
    const object = new S3Object(bucket, key, content, metadata);
    if (hasRange) object.range = range;
    return object;
  } catch (err) {
    if (err.code === 'ENOENT') return null;
    throw err;
  }
};

const buckets = (bucketsArg || '').split(',').filter(Boolean);
const server = new S3rver({
  directory: dataDir,
  address: '127.0.0.1',
  port: 0,
  silent: true,
  configureBuckets: buckets.map((name) => ({ name })),
});

server.run().then(
  (addr) => process.send({ port: addr.port }),
  (err) => {
    process.stderr.write(`s3rver-child: failed to start: ${err && err.stack}\n`);
    process.exit(1);
  },
);
