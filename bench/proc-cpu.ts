// CPU a process used so far, from /proc (Linux): what the process benches report per operation,
// because CPU per op shifts far less with a shared machine's load than throughput does.
import { readFileSync } from 'node:fs';

/** CPU ms (user + system) a process used so far, from /proc (Linux); NaN when unreadable. */
export function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return Number.NaN;
  }
}

export const sumCpuMs = (pids: readonly number[]): number => pids.reduce((a, p) => a + cpuMs(p), 0);
