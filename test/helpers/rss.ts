/**
 * @module test/helpers/rss
 *
 * Memory of live processes as the kernel counts it: VmRSS from
 * /proc/PID/status (Linux), and a sampler that keeps the highest value seen
 * of each pid while a test runs.
 */
import { readFileSync } from "node:fs";

/** The resident set of `pid` in bytes, or undefined when it is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface PeakRss {
  /** The highest RSS seen of each pid so far, in bytes. */
  peaks: () => Map<number, number>;
  stop: () => void;
}

/** Samples the RSS of `pids` every `everyMs` until stopped. */
export function samplePeakRss(pids: number[], everyMs = 100): PeakRss {
  const peaks = new Map<number, number>(pids.map((pid) => [pid, 0]));
  const sample = () => {
    for (const pid of pids) peaks.set(pid, Math.max(peaks.get(pid) ?? 0, rssBytes(pid) ?? 0));
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return { peaks: () => (sample(), new Map(peaks)), stop: () => clearInterval(timer) };
}
