/**
 * @module stack/diff
 *
 * What a hot reload does (issue #5), read off two plans (stack/plan.ts): the
 * running one and the one the config file now compiles to. Nothing here names
 * a config key: each section of the plan has one rule, and a section is
 * compared whole, so a key that reaches the plan is diffed with it —
 *   - fixed (state dir, listeners, admin, control socket): cannot change under
 *     a running stack; reported as needing a restart, the rest still applied;
 *   - apps: one added is started, one removed stopped, one that changes kind
 *     (module, command, static) replaced;
 *   - pools: a pool spec that differs in anything but `instances` is rolled
 *     onto new workers, one slot at a time (with its new size); `instances`
 *     alone is a resize;
 *   - proxy: other settings are sent to the proxy processes; another
 *     process count starts or retires proxy processes;
 *   - watch: the file watcher watches the new globs.
 * The compiler enforces the "each section has a rule" part: RULES and
 * FIXED_KEYS are typed by the plan's own keys.
 */
import type { PoolSpec } from "../supervisor/types.ts";
import type { FixedPlan, StackPlan } from "./plan.ts";

/**
 * What becomes of one app: none; start (new); stop (removed); replace (a
 * different kind of app: the old stopped, the new started); roll (new
 * workers, one slot at a time, at the new size); resize (only `instances`).
 * start, stop and replace touch the supervisor only for apps with a pool.
 */
export type AppAction = "none" | "start" | "stop" | "replace" | "roll" | "resize";

export interface AppChange {
  app: string;
  action: AppAction;
  /** A resize's instance counts. */
  instances?: { from: number; to: number };
}

export interface PlanDiff {
  /** Every app of either plan, in the new plan's order, then the removed ones. */
  apps: AppChange[];
  proxy: {
    /** The proxy processes need their new settings (routes, balancing, limits, health, static folders, TLS files, access log, drain time). */
    settings: boolean;
    /** `proxy.workers` changed: proxy processes are started or retired. */
    processes?: { from: number | "auto"; to: number | "auto" };
  };
  /** Apps (in both plans) whose `watch` globs changed: the watcher's business. */
  watch: string[];
  /** Config keys that changed but only take effect after a restart of the stack. */
  needsRestart: string[];
}

/** The config key each fixed part of the plan comes from, for the "needs a restart" line. */
const FIXED_KEYS: { [K in keyof FixedPlan]-?: string } = {
  listen: "proxy.listen",
  admin: "proxy.admin",
  adminToken: "proxy.admin_token",
  tlsListen: "proxy.tls",
  tlsHttp2: "proxy.tls.http2",
  stateDir: "state_dir",
  control: "state_dir",
  logBound: "logs",
};

/** Structural equality of plain data; key order and keys holding `undefined` do not count. */
export function sameData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === (b as unknown[]).length && a.every((item, index) => sameData(item, (b as unknown[])[index]));
  const keys = (value: object) => Object.keys(value).filter((key) => (value as Record<string, unknown>)[key] !== undefined);
  const aKeys = keys(a);
  const bKeys = keys(b);
  return aKeys.length === bKeys.length && aKeys.every((key) => sameData((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}

/** A pool's spec but its size: what a worker process is. */
function withoutSize(spec: PoolSpec): Omit<PoolSpec, "instances"> {
  const { instances: _instances, ...process } = spec;
  return process;
}

function appChange(app: string, running: StackPlan, next: StackPlan): AppChange {
  const before = running.apps[app];
  const after = next.apps[app];
  if (!before) return { app, action: "start" };
  if (!after) return { app, action: "stop" };
  if (before.kind !== after.kind) return { app, action: "replace" };
  // Same kind; routes and folders are the proxy's (in its settings), and status reads the plan itself.
  const was = running.pools[app];
  const now = next.pools[app];
  if (!was || !now) return { app, action: "none" };
  if (!sameData(withoutSize(was), withoutSize(now))) return { app, action: "roll" };
  if (was.instances !== now.instances) return { app, action: "resize", instances: { from: was.instances, to: now.instances } };
  return { app, action: "none" };
}

type Rule<K extends keyof StackPlan> = (running: StackPlan[K], next: StackPlan[K], diff: PlanDiff, plans: { running: StackPlan; next: StackPlan }) => void;

/** One rule per section of the plan: a new section does not compile until it has one. */
const RULES: { [K in keyof StackPlan]: Rule<K> } = {
  fixed(running, next, diff) {
    for (const key of Object.keys(FIXED_KEYS) as (keyof FixedPlan)[]) {
      const name = FIXED_KEYS[key];
      // Once a key is listed, its own keys are not (proxy.tls added says it all; proxy.tls.http2 need not follow).
      const listed = diff.needsRestart.some((other) => name === other || name.startsWith(`${other}.`));
      if (!sameData(running[key], next[key]) && !listed) diff.needsRestart.push(name);
    }
  },
  apps(running, next, diff, plans) {
    const names = [...Object.keys(next), ...Object.keys(running).filter((app) => !(app in next))];
    diff.apps = names.map((app) => appChange(app, plans.running, plans.next));
  },
  // Read per app by the apps rule: a pool exists only with its app, and its kind goes with the app's.
  pools() {},
  proxy(running, next, diff) {
    if (!sameData(running.settings, next.settings)) diff.proxy.settings = true;
    if (running.processes !== next.processes) diff.proxy.processes = { from: running.processes, to: next.processes };
  },
  watch(running, next, diff, plans) {
    for (const [app, globs] of Object.entries(next)) {
      const before = running[app];
      if (before && plans.running.apps[app]?.kind === plans.next.apps[app]?.kind && !sameData(before, globs)) diff.watch.push(app);
    }
  },
};

export function diffPlans(running: StackPlan, next: StackPlan): PlanDiff {
  const diff: PlanDiff = { apps: [], proxy: { settings: false }, watch: [], needsRestart: [] };
  const plans = { running, next };
  const apply = <K extends keyof StackPlan>(key: K) => RULES[key](running[key], next[key], diff, plans);
  for (const key of Object.keys(RULES) as (keyof StackPlan)[]) apply(key);
  return diff;
}

/** The apps whose change is `action`, in the diff's order. */
export function appsTo(diff: PlanDiff, ...actions: AppAction[]): string[] {
  return diff.apps.filter((change) => actions.includes(change.action)).map((change) => change.app);
}

/** True when applying the diff changes nothing. */
export function isEmptyDiff(diff: PlanDiff): boolean {
  return (
    diff.apps.every((change) => change.action === "none") &&
    !diff.proxy.settings &&
    diff.proxy.processes === undefined &&
    diff.watch.length + diff.needsRestart.length === 0
  );
}

/** One line per change, for the terminal and the control API. */
export function describeDiff(diff: PlanDiff): string[] {
  const lines: string[] = [];
  const added = appsTo(diff, "start");
  const replaced = appsTo(diff, "replace");
  const removed = appsTo(diff, "stop");
  const rolled = appsTo(diff, "roll");
  if (added.length) lines.push(`added ${added.join(", ")}`);
  if (replaced.length) lines.push(`replaced ${replaced.join(", ")} (a different kind of app)`);
  if (removed.length) lines.push(`removed ${removed.join(", ")}`);
  if (rolled.length) lines.push(`reloading ${rolled.join(", ")} onto new workers`);
  for (const { app, instances } of diff.apps) if (instances) lines.push(`scaled ${app} ${instances.from} -> ${instances.to}`);
  if (diff.proxy.processes) lines.push(`proxy processes ${diff.proxy.processes.from} -> ${diff.proxy.processes.to}`);
  if (diff.proxy.settings) lines.push("proxy routing and settings updated");
  if (diff.watch.length) lines.push(`watching new files for ${diff.watch.join(", ")}`);
  if (diff.needsRestart.length) lines.push(`changed, but needs a restart of the stack to apply: ${diff.needsRestart.join(", ")}`);
  return lines;
}
