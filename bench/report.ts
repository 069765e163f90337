/**
 * Formatting of benchmark results: Markdown tables that read well in a terminal and paste unchanged into
 * docs/benchmarks.md.
 */
import { megabytesPerSecond, opsPerSecond, percentile, type Measurement, type Operation } from './measure.js';
import type { RssReport } from './orchestrator-child.js';

/** One side of the comparison: who the client talked to and with which checksum settings. */
export interface Side {
  /** Short label used in the tables. */
  label: string;
  /** The side whose figures are the 1.0 of the ratio column. */
  baseline: boolean;
}

/** One row: an operation at one size against one side. */
export interface Row {
  op: Operation;
  size: number;
  side: Side;
  m: Measurement;
}

/** A memory probe around one large transfer through the orchestrator. */
export interface RssRow {
  label: string;
  op: Operation;
  size: number;
  m: Measurement;
  /** Undefined for the direct side, which has no orchestrator process to measure. */
  rss?: RssReport;
}

/** `4 KiB`, `1 MiB`, `1 GiB`, or bytes. */
export function formatSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  let v = n;
  while (v >= 1024 && v % 1024 === 0 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v} ${units[u]}`;
}

function mib(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)}`;
}

function fixed(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '-';
}

function num(v: number): string {
  if (!Number.isFinite(v)) return '-';
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** A Markdown table with padded columns; numeric columns (all but the first `textCols`) right-aligned. */
export function table(header: string[], rows: string[][], textCols = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const pad = (cells: string[]) =>
    `| ${cells.map((c, i) => (i < textCols ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i < textCols ? `-${'-'.repeat(w)}-` : `-${'-'.repeat(w)}:`)).join('|')}|`;
  return [pad(header), rule, ...rows.map(pad)].join('\n');
}

/** CPU cores a process kept busy on average while the figure was taken. */
function cores(m: Measurement, pick: (c: NonNullable<Measurement['cpu']>) => number, skip = false): string {
  if (skip || !m.cpu || m.seconds <= 0) return '-';
  return fixed(pick(m.cpu) / m.seconds, 2);
}

/** CPU table: average cores busy per process (2.00 = both cores of a 2-core machine). */
export function cpuTable(rows: Row[]): string {
  const body = rows.map((r) => [
    r.op,
    formatSize(r.size),
    r.side.label,
    cores(r.m, (c) => c.client),
    cores(r.m, (c) => c.orchestrator, r.side.baseline),
    cores(r.m, (c) => c.s3rver),
    cores(r.m, (c) => c.machine),
    r.m.cpu && r.m.ops > 0 ? fixed(((r.m.cpu.client + r.m.cpu.orchestrator + r.m.cpu.s3rver) * 1000) / r.m.ops, 2) : '-',
    r.m.cpu && r.m.ops > 0 && !r.side.baseline ? fixed((r.m.cpu.orchestrator * 1000) / r.m.ops, 2) : '-',
  ]);
  return table(
    ['op', 'size', 'side', 'client', 'orchestrator', 's3rver', 'whole machine', 'CPU ms/op (3 procs)', 'orchestrator CPU ms/op'],
    body,
    3,
  );
}

/** Throughput table; the ratio is this row's MB/s over the baseline side's for the same operation and size. */
export function throughputTable(rows: Row[]): string {
  const base = (r: Row) => rows.find((b) => b.side.baseline && b.op === r.op && b.size === r.size);
  const body = rows.map((r) => {
    const b = base(r);
    const ratio = b && megabytesPerSecond(b.m) > 0 ? megabytesPerSecond(r.m) / megabytesPerSecond(b.m) : Number.NaN;
    return [
      r.op,
      formatSize(r.size),
      r.side.label,
      String(r.m.ops),
      num(opsPerSecond(r.m)),
      num(megabytesPerSecond(r.m)),
      fixed(percentile(r.m, 50), 1),
      fixed(percentile(r.m, 99), 1),
      r.side.baseline ? '1.00' : fixed(ratio, 2),
      r.m.errors === 0 ? '0' : `${r.m.errors} (${r.m.firstError ?? ''})`,
    ];
  });
  return table(['op', 'size', 'side', 'ops', 'ops/s', 'MB/s', 'p50 ms', 'p99 ms', 'ratio', 'errors'], body, 3);
}

/** Memory table: RSS of the orchestrator process around each large transfer, in MiB. */
export function rssTable(rows: RssRow[]): string {
  const body = rows.map((r) => [
    r.op,
    formatSize(r.size),
    r.label,
    fixed(r.m.seconds, 2),
    num(megabytesPerSecond(r.m)),
    r.rss ? mib(r.rss.baseline) : '-',
    r.rss ? mib(r.rss.peak) : '-',
    r.rss ? mib(r.rss.peak - r.rss.baseline) : '-',
    r.rss?.hwm !== undefined ? mib(r.rss.hwm - r.rss.baseline) : '-',
    r.rss ? String(r.rss.samples) : '-',
    r.m.errors === 0 ? '0' : `${r.m.errors} (${r.m.firstError ?? ''})`,
  ]);
  return table(
    ['op', 'size', 'side', 'seconds', 'MB/s', 'RSS base MiB', 'RSS peak MiB', 'growth MiB', 'VmHWM growth MiB', 'samples', 'errors'],
    body,
    3,
  );
}
