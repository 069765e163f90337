/**
 * CPU accounting for the benchmark's processes, read from /proc (Linux). On a 2-core machine the client,
 * the orchestrator and the s3rvers compete for the same cores, so the CPU seconds each one spends per
 * figure explain a ratio better than the ratio alone: a hop that costs CPU slows everything down once the
 * machine is saturated. Elsewhere than Linux every figure is NaN and the tables show '-'.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat and /proc/stat (USER_HZ, 100 on every Linux build we know). */
const HZ = 100;

/** CPU seconds (user + system) per named process, and of the whole machine. */
export interface CpuSeconds {
  client: number;
  orchestrator: number;
  /** The s3rver the side's bytes end up in (direct s3rver or the orchestrator's backend). */
  s3rver: number;
  /** Busy time of all cores together (everything on the machine, including other users). */
  machine: number;
}

/** The processes to watch. */
export interface CpuPids {
  orchestrator: number;
  directS3rver: number;
  backendS3rver: number;
}

/** Raw counters at one instant. */
export interface CpuSnapshot {
  client: number;
  orchestrator: number;
  directS3rver: number;
  backendS3rver: number;
  machine: number;
}

/** utime + stime of a process in seconds, NaN when unreadable. */
function processSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name can contain spaces and parentheses: fields are counted after its closing ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / HZ;
  } catch {
    return Number.NaN;
  }
}

/** Busy seconds of all cores together (total minus idle and iowait). */
function machineSeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    return (total - (v[3] ?? 0) - (v[4] ?? 0)) / HZ;
  } catch {
    return Number.NaN;
  }
}

/** Counters now. */
export function snapshot(pids: CpuPids): CpuSnapshot {
  const own = process.cpuUsage();
  return {
    client: (own.user + own.system) / 1e6,
    orchestrator: processSeconds(pids.orchestrator),
    directS3rver: processSeconds(pids.directS3rver),
    backendS3rver: processSeconds(pids.backendS3rver),
    machine: machineSeconds(),
  };
}

/** What was spent between two snapshots by a side that talks to the direct s3rver or to the orchestrator. */
export function spent(a: CpuSnapshot, b: CpuSnapshot, direct: boolean): CpuSeconds {
  return {
    client: b.client - a.client,
    orchestrator: direct ? 0 : b.orchestrator - a.orchestrator,
    s3rver: direct ? b.directS3rver - a.directS3rver : b.backendS3rver - a.backendS3rver,
    machine: b.machine - a.machine,
  };
}

/** Sums several measurements' CPU seconds. */
export function sumCpu(xs: readonly CpuSeconds[]): CpuSeconds {
  const out: CpuSeconds = { client: 0, orchestrator: 0, s3rver: 0, machine: 0 };
  for (const x of xs) {
    out.client += x.client;
    out.orchestrator += x.orchestrator;
    out.s3rver += x.s3rver;
    out.machine += x.machine;
  }
  return out;
}

/**
 * The pid of this process's child whose command line contains `needle` (the s3rver harness does not
 * expose its child's pid, but each child's command line names its own temp directory). NaN if none.
 */
export function childPid(needle: string): number {
  try {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid !== process.pid) continue;
        if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(needle)) return Number(name);
      } catch {
        // The process exited while we looked.
      }
    }
  } catch {
    // No /proc.
  }
  return Number.NaN;
}
