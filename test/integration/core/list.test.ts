/**
 * Listing cost and correctness through core (src/core/list.ts) on a real PostgreSQL, over a few thousand
 * rows generated in SQL (no PUTs: listing reads object_versions only). Every page of many listings is
 * compared with a model of S3's listing, and its cost is bounded: at most 3 statements and
 * O(max-keys) rows per page, however many keys sit under each common prefix — the old listing re-read up
 * to 1,001 rows per common prefix.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { listObjects } from '../../../src/core/list.js';
import type { ListInput, ListResult } from '../../../src/core/types.js';
import type { Db, Queryable } from '../../../src/meta/db.js';
import { openDatabase } from '../../../src/meta/open.js';
import { freshDatabase, type TestDatabase } from '../../harness/db.js';

let tdb: TestDatabase;
let db: Db;
let keys: string[] = [];

/** Shapes: a folder of files, a folder mixing files and big and small sub-prefixes, a prefix-heavy folder. */
const SHAPE = `
  SELECT 'plain/k' || lpad(g::text, 4, '0') FROM generate_series(0, 299) g
  UNION ALL SELECT 'mixed/a' || lpad(g::text, 4, '0') FROM generate_series(0, 149) g
  UNION ALL SELECT 'mixed/b/' || lpad(g::text, 4, '0') FROM generate_series(0, 499) g
  UNION ALL SELECT 'mixed/c' || lpad(g::text, 4, '0') FROM generate_series(0, 149) g
  UNION ALL SELECT 'mixed/d' || lpad((g / 30)::text, 2, '0') || '/' || (g % 30) FROM generate_series(0, 599) g
  UNION ALL SELECT 'mixed/e'
  UNION ALL SELECT 'deep/p' || lpad((g / 3)::text, 3, '0') || '/' || (g % 3) FROM generate_series(0, 899) g
  UNION ALL SELECT 'root-' || g FROM generate_series(0, 4) g`;

before(async () => {
  tdb = await freshDatabase();
  ({ db } = await openDatabase(tdb.config));
  await db.query(`INSERT INTO buckets (name, source) VALUES ('b', 'config')`);
  await db.query(
    `INSERT INTO object_versions (version_id, bucket, key, state, size, etag, user_meta)
     SELECT md5(k), 'b', k, 'live', length(k), md5(k), '{"m":"x"}' FROM (${SHAPE}) s(k)`,
  );
  keys = (await db.query<{ key: string }>(`SELECT key FROM object_versions WHERE bucket = 'b'`)).rows.map((r) => r.key);
});

after(async () => {
  await db?.close();
  await tdb?.drop();
});

const byteCmp = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/** S3's listing as a model (as in test/integration/s3/list.test.ts). */
function model(o: { prefix: string; delimiter?: string; after?: string }): string[] {
  const out: string[] = [];
  for (const k of keys.filter((x) => x.startsWith(o.prefix)).sort(byteCmp)) {
    if (o.after !== undefined && byteCmp(k, o.after) <= 0) continue;
    const i = o.delimiter ? k.indexOf(o.delimiter, o.prefix.length) : -1;
    if (i < 0) {
      out.push(k);
      continue;
    }
    const cp = k.slice(0, i + o.delimiter!.length);
    if ((o.after !== undefined && byteCmp(cp, o.after) <= 0) || out[out.length - 1] === cp) continue;
    out.push(cp);
  }
  return out;
}

/** Counts statements and rows going through the database. */
function counting(inner: Queryable): { q: Queryable; n: { statements: number; rows: number } } {
  const n = { statements: 0, rows: 0 };
  return {
    n,
    q: {
      async query(text, values) {
        const r = await inner.query(text, values);
        n.statements++;
        n.rows += r.rows.length;
        return r as never;
      },
      exec: (text) => inner.exec(text),
    },
  };
}

const entries = (r: ListResult) => [...r.objects.map((o) => o.key), ...r.commonPrefixes].sort(byteCmp);

/** Walks every page; each must equal the model's next max-keys entries and stay within the cost bound. */
async function expectPages(input: Omit<ListInput, 'bucket'>): Promise<{ pages: number; maxRows: number }> {
  const want = model(input);
  const what = JSON.stringify(input);
  let after = input.after;
  let at = 0;
  let pages = 0;
  let maxRows = 0;
  for (;;) {
    const { q, n } = counting(db);
    const r = await listObjects(q, { ...input, bucket: 'b', ...(after !== undefined ? { after } : {}) });
    pages++;
    const chunk = want.slice(at, at + input.maxKeys);
    at += chunk.length;
    assert.deepEqual(entries(r), chunk, `${what}: page ${pages}`);
    assert.equal(r.isTruncated, at < want.length, `${what}: IsTruncated of page ${pages}`);
    assert.ok(n.statements <= 3, `${what}: page ${pages} took ${n.statements} statements`);
    // O(page): one range batch of <= 101 rows, one of <= max-keys + 1, a skip scan of <= max-keys + 1 entries.
    const bound = 101 + 2 * (input.maxKeys + 1);
    assert.ok(n.rows <= bound, `${what}: page ${pages} fetched ${n.rows} rows (bound ${bound})`);
    maxRows = Math.max(maxRows, n.rows);
    if (!r.isTruncated) return { pages, maxRows };
    assert.equal(r.nextAfter, chunk[chunk.length - 1], `${what}: the next page starts after the last entry`);
    after = r.nextAfter;
  }
}

describe('listObjects on PostgreSQL', () => {
  it('every page equals the model, within 3 statements and O(max-keys) rows', async () => {
    for (const prefix of ['', 'plain/', 'mixed/', 'mixed/b/', 'deep/', 'deep/p1', 'nothing/']) {
      for (const delimiter of [undefined, '/', '0/']) {
        for (const maxKeys of [7, 100, 101, 102, 1000]) await expectPages({ prefix, ...(delimiter ? { delimiter } : {}), maxKeys });
      }
    }
  });

  it('page boundaries at every entry of a mixed folder (max-keys 1 and 2)', async () => {
    for (const maxKeys of [1, 2]) await expectPages({ prefix: 'mixed/', delimiter: '/', maxKeys });
  });

  it('start points inside, before and after common prefixes', async () => {
    for (const after of ['mixed/a0149', 'mixed/b/', 'mixed/b/0250', 'mixed/c', 'mixed/d05/17', 'mixed/d19/', 'mixed/e', 'deep/p100/', 'deep/p100/1', 'a', 'zzz']) {
      for (const maxKeys of [3, 1000]) {
        await expectPages({ prefix: '', delimiter: '/', after, maxKeys });
        await expectPages({ prefix: 'mixed/', delimiter: '/', after, maxKeys });
      }
    }
  });

  it('a page of 1,000 common prefixes over 3 keys each reads about one row per prefix', async () => {
    // 300 prefixes here: the whole listing in one page.
    const { pages, maxRows } = await expectPages({ prefix: 'deep/', delimiter: '/', maxKeys: 1000 });
    assert.equal(pages, 1);
    assert.ok(maxRows <= 101 + 301, `${maxRows} rows for 300 common prefixes`);
  });

  it('listing columns only: no user metadata or headers are read', async () => {
    const r = await listObjects(db, { bucket: 'b', prefix: 'root-', maxKeys: 10 });
    assert.equal(r.objects.length, 5);
    assert.deepEqual(Object.keys(r.objects[0]!).sort(), ['etag', 'key', 'lastModified', 'size']);
  });
});
