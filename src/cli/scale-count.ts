/**
 * @module cli/scale-count
 *
 * `tsgi-stack scale APP N` and, as pm2 users type it, `scale APP +1` /
 * `scale APP -1`: a count, or a change to the number of workers the app runs
 * now (its pool's `instances`, which a runtime scale may have moved off the
 * config's). The count is worked out here, against the status just read, by
 * the control API's own rule (stack/control.ts changedInstances, which the
 * status page's +/- reach through the admin listener), and the stack is sent
 * the number; a refusal names the app and what it runs.
 *
 * `-1` reaches the command as an argument, not an unknown option: commander
 * (since 14) reads a negative number as one in a command that has no option
 * spelled like a digit, which `scale` must keep so.
 */
import { MAX_INSTANCES } from "../contract/limits.ts";
import { BadInstanceCount, changedInstances, UnknownApp, StaticAppRefused } from "../stack/control.ts";
import type { StackStatus } from "../stack/status.ts";
import { UsageError } from "./usage-error.ts";

/** N (a count), or +K / -K (a change to what runs now). */
export type ScaleCount = { kind: "absolute"; instances: number } | { kind: "relative"; change: number };

/** Reads the N of `scale APP N`; a UsageError (exit 2) names both when it is neither a count nor +K / -K. */
export function parseScaleCount(app: string, text: string): ScaleCount {
  if (/^\d+$/.test(text)) {
    const instances = Number(text);
    if (instances < 1 || instances > MAX_INSTANCES) throw new UsageError(`scale ${app} ${text}: N must be a whole number from 1 to ${MAX_INSTANCES}`);
    return { kind: "absolute", instances };
  }
  if (/^[+-]\d+$/.test(text)) return { kind: "relative", change: Number(text) };
  throw new UsageError(`scale ${app} ${text}: N must be a whole number from 1 to ${MAX_INSTANCES}, or +K / -K to add or remove workers`);
}

/**
 * The number of workers to ask for. A change is counted from the app's pool
 * as it runs; an app the stack does not have is refused as the stack refuses
 * it (by name, with the apps there are), and a result below 1 or above
 * MAX_INSTANCES is refused naming the app and what it runs.
 */
export function targetInstances(app: string, count: ScaleCount, status: Pick<StackStatus, "apps" | "pools">): number {
  if (count.kind === "absolute") return count.instances;
  const pool = status.pools.find((candidate) => candidate.app === app);
  if (!pool) {
    const apps = status.apps ?? [];
    const proxyOwn = apps.find((candidate) => candidate.app === app && (candidate.kind === "static" || candidate.kind === "redirect"));
    if (proxyOwn) throw new StaticAppRefused(app, "scale", proxyOwn.kind as "static" | "redirect");
    throw new UnknownApp(app, apps.length > 0 ? apps.map((candidate) => candidate.app) : status.pools.map((candidate) => candidate.app));
  }
  try {
    return changedInstances(app, pool.instances, count.change);
  } catch (error) {
    // Checked here before the stack is asked: a usage error of the command line (exit 2).
    throw error instanceof BadInstanceCount ? new UsageError(error.message) : error;
  }
}
