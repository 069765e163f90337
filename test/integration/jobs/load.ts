/**
 * Client load for the drain tests: readers GET random objects and check every byte against the
 * generation the body names (which must lie between the last generation acknowledged when the read
 * began and the last one started when it ended); writers overwrite objects with the next generation,
 * one write per key at a time. Every failure is recorded with the key and what went wrong.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { body, generationOf, getObject, putObject } from './fixture.js';

const MIB = 1024 * 1024;

/** Keys that exercise encoding on every path (URL, SigV4, physical layout, listings). */
export const ODD_KEYS = [
  'odd/ space key ',
  'odd/ünïcødé/ключ/鍵',
  'odd/a+b?c#d&e=f',
  'odd/%2F%20already-encoded',
  'odd/emoji 😀🚀',
  'odd/tab\tand\nnewline',
  'odd/..',
  'odd/trailing/',
  `odd/${'long-'.repeat(180)}end`,
  'odd/empty',
];

/** The size of a key's generation: 0 for `odd/empty`, else 100 B to ~48 KiB, varying with the generation. */
export function sizeOf(key: string, gen: number): number {
  if (key === 'odd/empty') return 0;
  let h = gen * 2654435761;
  for (const ch of key) h = (h * 31 + ch.codePointAt(0)!) >>> 0;
  return 100 + (h % (48 * 1024));
}

export interface LoadStats {
  reads: number;
  writes: number;
  failures: string[];
  /** Last acknowledged generation of every key. */
  acked: Map<string, number>;
}

export class Load {
  readonly #client: S3Client;
  readonly #keys: readonly string[];
  readonly #overwritable: readonly string[];
  readonly #multipart: ReadonlySet<string>;
  readonly #readers: number;
  readonly #writers: number;
  readonly #acked = new Map<string, number>();
  readonly #started = new Map<string, number>();
  readonly #writing = new Set<string>();
  readonly #failures: string[] = [];
  #reads = 0;
  #writes = 0;
  #stopped = false;
  #loops: Promise<void>[] = [];

  constructor(client: S3Client, keys: readonly string[], opts: { overwritable: readonly string[]; multipart: readonly string[]; readers: number; writers: number }) {
    this.#client = client;
    this.#keys = keys;
    this.#overwritable = opts.overwritable;
    this.#multipart = new Set(opts.multipart);
    this.#readers = opts.readers;
    this.#writers = opts.writers;
    for (const k of keys) {
      this.#acked.set(k, 1);
      this.#started.set(k, 1);
    }
  }

  #size(key: string, gen: number): number {
    return this.#multipart.has(key) ? 5 * MIB + 1234 : sizeOf(key, gen);
  }

  start(): void {
    for (let i = 0; i < this.#readers; i++) this.#loops.push(this.#read(i));
    for (let i = 0; i < this.#writers; i++) this.#loops.push(this.#write(i));
  }

  async #read(seed: number): Promise<void> {
    let n = seed;
    while (!this.#stopped) {
      n = (n * 1103515245 + 12345) >>> 0;
      // Multipart objects are big: read them rarely.
      let key = this.#keys[n % this.#keys.length]!;
      if (this.#multipart.has(key) && n % 7 !== 0) key = this.#keys[(n >>> 3) % this.#keys.length]!;
      const low = this.#acked.get(key)!;
      try {
        const data = await getObject(this.#client, key);
        const high = this.#started.get(key)!;
        const gen = generationOf(key, data);
        if (gen < low || gen > high) this.#failures.push(`read ${JSON.stringify(key)}: generation ${gen}, expected ${low}..${high}`);
        else if (data.compare(body(key, gen, this.#size(key, gen))) !== 0) this.#failures.push(`read ${JSON.stringify(key)}: bytes of generation ${gen} differ`);
        this.#reads++;
      } catch (err) {
        this.#failures.push(`read ${JSON.stringify(key)}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
      }
    }
  }

  async #write(seed: number): Promise<void> {
    let n = seed + 17;
    while (!this.#stopped) {
      n = (n * 1103515245 + 12345) >>> 0;
      const key = this.#overwritable[n % this.#overwritable.length]!;
      if (this.#writing.has(key)) continue;
      this.#writing.add(key);
      const gen = this.#started.get(key)! + 1;
      this.#started.set(key, gen);
      try {
        await putObject(this.#client, key, body(key, gen, this.#size(key, gen)));
        this.#acked.set(key, gen);
        this.#writes++;
      } catch (err) {
        this.#failures.push(`write ${JSON.stringify(key)} generation ${gen}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
      } finally {
        this.#writing.delete(key);
      }
    }
  }

  async stop(): Promise<LoadStats> {
    this.#stopped = true;
    await Promise.all(this.#loops);
    return { reads: this.#reads, writes: this.#writes, failures: this.#failures, acked: this.#acked };
  }
}
