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
 *   kill the process; an uncaughtException handler keeps it serving, and Complete now checks every listed
 *   part (present, ETag matching, upload of that key) first and answers InvalidPart / NoSuchUpload as S3 does.
 * - UploadPart wrote straight to the live part file with an unchecked .pipe chain, so an aborted part upload
 *   left a truncated part that a later Complete would assemble. Parts now go through a temp file renamed into
 *   place once the whole body (Content-Length bytes) arrived; re-uploading a number replaces it atomically.
 *   UploadPart to an unknown upload id is NoSuchUpload instead of silently creating one.
 * - Complete concatenated parts with a PassThrough that ignores read errors; the parts are now streamed in
 *   order through one generator, so a failing part read fails the request.
 *
 * Still missing (the backend copes): ListParts, AbortMultipartUpload (405 MethodNotAllowed) and, unless the
 * `partCopy` feature is passed as the third argument, UploadPartCopy (501 NotImplemented). With `partCopy`,
 * UploadPartCopy is served here (source percent-decoded per RFC 3986, `x-amz-copy-source-range` honoured), so
 * tests can exercise a backend's native part-copy path as well as its fallback.
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { Readable, Transform } = require('node:stream');
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
const S3Error = require('s3rver/lib/models/error');

const [directory, bucketsArg, featuresArg, portArg] = process.argv.slice(2);
const features = new Set((featuresArg || '').split(',').filter(Boolean));
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

/** Streams `content` into a temp file (MD5 and size on the way), failing on an aborted or short body. */
async function writeTemp(content) {
  const md5Context = crypto.createHash('md5');
  let size = 0;
  const tmp = path.join(tmpDir, crypto.randomBytes(12).toString('hex'));
  try {
    await pipeline(
      content,
      new Transform({
        transform(chunk, _enc, cb) {
          md5Context.update(chunk);
          size += chunk.length;
          cb(null, chunk);
        },
      }),
      fs.createWriteStream(tmp),
    );
    const expected = Number(content.headers && content.headers['content-length']);
    if (Number.isFinite(expected) && expected !== size) throw new Error(`short body: ${size} of ${expected} bytes`);
    return { tmp, size, md5: md5Context.digest('hex') };
  } catch (err) {
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw err;
  }
}

function uploadDir(store, bucket, uploadId) {
  if (!/^[0-9a-f]+$/.test(String(uploadId))) throw new S3Error('NoSuchUpload', 'The specified upload does not exist.');
  return path.join(store.getResourcePath(bucket, undefined, 'uploads'), String(uploadId));
}

async function uploadKey(dir) {
  try {
    return await fs.promises.readFile(path.join(dir, 'key'), 'utf8');
  } catch (err) {
    if (err.code === 'ENOENT') throw new S3Error('NoSuchUpload', 'The specified upload does not exist.');
    throw err;
  }
}

FilesystemStore.prototype.putPart = async function putPart(bucket, uploadId, partNumber, content) {
  const dir = uploadDir(this, bucket, uploadId);
  await uploadKey(dir);
  const { tmp, size, md5 } = await writeTemp(content);
  const partPath = path.join(dir, String(Number(partNumber)));
  try {
    await fs.promises.rename(tmp, partPath);
  } catch (err) {
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fs.promises.writeFile(`${partPath}.md5`, md5);
  return { size, md5 };
};

FilesystemStore.prototype.putObjectMultipart = async function putObjectMultipart(bucket, uploadId, parts) {
  const dir = uploadDir(this, bucket, uploadId);
  const key = await uploadKey(dir);
  const metadata = JSON.parse(await fs.promises.readFile(path.join(dir, 'metadata'), 'utf8'));
  const ordered = [...parts].sort((a, b) => a.number - b.number);
  for (const part of ordered) {
    const stored = await fs.promises.readFile(path.join(dir, `${part.number}.md5`), 'utf8').catch(() => null);
    if (stored === null || stored !== part.etag) {
      throw new S3Error(
        'InvalidPart',
        'One or more of the specified parts could not be found. The part may not have been uploaded, or the ' +
          "specified entity tag may not match the part's entity tag.",
        { PartNumber: part.number, ETag: part.etag },
      );
    }
  }
  async function* concat() {
    for (const part of ordered) yield* fs.createReadStream(path.join(dir, String(part.number)));
  }
  const result = await this.putObject(new S3Object(bucket, key, Readable.from(concat(), { objectMode: false }), metadata));
  await fs.promises.rm(dir, { recursive: true, force: true });
  return result;
};

/** Koa middleware serving UploadPartCopy (PUT ?uploadId&partNumber with x-amz-copy-source). */
async function uploadPartCopy(ctx, next) {
  if (ctx.method !== 'PUT' || !('uploadId' in ctx.query) || !('x-amz-copy-source' in ctx.headers)) return next();
  const bucket = decodeURIComponent(ctx.path.slice(1).split('/')[0]);
  const source = decodeURIComponent(ctx.headers['x-amz-copy-source'].split('?')[0].replace(/^\//, ''));
  const [srcBucket, ...srcKeyParts] = source.split('/');
  let range;
  const rangeHeader = ctx.headers['x-amz-copy-source-range'];
  if (rangeHeader !== undefined) {
    const m = /^bytes=(\d+)-(\d+)$/.exec(rangeHeader);
    if (!m) throw new S3Error('InvalidArgument', 'The x-amz-copy-source-range value must be of the form bytes=first-last.');
    range = { start: Number(m[1]), end: Number(m[2]) };
  }
  const src = await ctx.store.getObject(srcBucket, srcKeyParts.join('/'), range);
  if (!src) throw new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: srcKeyParts.join('/') });
  if (range && (range.end >= src.size || !src.content)) {
    if (src.content) src.content.destroy();
    throw new S3Error('InvalidRange', 'The requested range is not satisfiable');
  }
  await uploadKey(uploadDir(ctx.store, bucket, ctx.query.uploadId));
  const { md5 } = await ctx.store.putPart(bucket, ctx.query.uploadId, ctx.query.partNumber, src.content);
  ctx.body = { CopyPartResult: { LastModified: new Date().toISOString(), ETag: JSON.stringify(md5) } };
}

const buckets = (bucketsArg || '').split(',').filter(Boolean);
const server = new S3rver({
  directory: dataDir,
  address: '127.0.0.1',
  port: Number(portArg || 0),
  silent: true,
  configureBuckets: buckets.map((name) => ({ name })),
});
// Koa composes `middleware` when listening, so inserting before the router (the last entry) takes effect.
if (features.has('partCopy')) server.middleware.splice(server.middleware.length - 1, 0, uploadPartCopy);

server.run().then(
  (addr) => process.send({ port: addr.port }),
  (err) => {
    process.stderr.write(`s3rver-child: failed to start: ${err && err.stack}\n`);
    process.exit(1);
  },
);
