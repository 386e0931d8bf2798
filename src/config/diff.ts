/**
 * @module config/diff
 *
 * What a config hot reload has to do (issue #5): the running config against
 * the new one, sorted by how each difference can be applied to a stack that
 * keeps serving —
 *   - an app added is started, one removed drained and stopped;
 *   - an app whose workers would run differently (module, command, env,
 *     cwd, interface, timeouts, recycling, restart policy) is rolled onto new
 *     workers, one slot at a time;
 *   - `instances` alone is a scale;
 *   - routes, balancing, health checks, retries, static folders and the
 *     proxy's limits and trusted proxies are the proxy's: swapped at once;
 *   - listen addresses, the admin address, TLS listeners and the state
 *     folder cannot change under a running stack: they are reported as
 *     needing a restart, and the rest is still applied.
 * Pure data in, data out: the stack applies it.
 */
import type { AppConfig, StackConfig } from "./schema.ts";

export interface ConfigDiff {
  added: string[];
  removed: string[];
  /** Apps whose workers must be replaced (their process spec changed). */
  rolled: string[];
  /** Apps whose only process change is their instance count. */
  scaled: { app: string; from: number; to: number }[];
  /** Whether the proxy's routing, balancing, health, retry or static settings changed. */
  proxyChanged: boolean;
  /** Apps whose `watch` globs changed (the file watcher's business). */
  watchChanged: string[];
  /** Config keys that changed but only take effect after a restart of the stack. */
  needsRestart: string[];
  /** `proxy.workers` changed: proxy processes are started or retired (with proxyChanged). */
  proxyWorkers?: { from: number | "auto"; to: number | "auto" };
}

/** App keys that change what a worker process is: a change means new workers. */
const PROCESS_KEYS = [
  "module",
  "command",
  "interface",
  "env",
  "cwd",
  "max_memory",
  "max_requests",
  "max_requests_jitter",
  "timeout",
  "graceful_timeout",
  "ready_timeout",
  "restart",
] as const satisfies readonly (keyof AppConfig)[];

/** App keys the proxy alone reads. */
// graceful_timeout too: a stopping proxy process lets requests drain for the longest of them.
const PROXY_KEYS = ["routes", "balance", "health", "retry", "static", "graceful_timeout"] as const satisfies readonly (keyof AppConfig)[];

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** An app that changes kind (module, command, static) is a different app: removed and added. */
function kindOf(app: AppConfig): "module" | "command" | "static" {
  return app.static !== undefined ? "static" : app.command !== undefined ? "command" : "module";
}

export function diffConfig(running: StackConfig, next: StackConfig): ConfigDiff {
  const diff: ConfigDiff = { added: [], removed: [], rolled: [], scaled: [], proxyChanged: false, watchChanged: [], needsRestart: [] };
  for (const [name, app] of Object.entries(next.apps)) {
    const before = running.apps[name];
    if (!before || kindOf(before) !== kindOf(app)) {
      if (before) diff.removed.push(name);
      diff.added.push(name);
      diff.proxyChanged = true;
      continue;
    }
    if (PROCESS_KEYS.some((key) => !same(before[key], app[key]))) diff.rolled.push(name);
    else if (before.instances !== app.instances) diff.scaled.push({ app: name, from: before.instances, to: app.instances });
    if (PROXY_KEYS.some((key) => !same(before[key], app[key]))) diff.proxyChanged = true;
    if (!same(before.watch, app.watch)) diff.watchChanged.push(name);
  }
  for (const name of Object.keys(running.apps)) {
    if (!(name in next.apps)) {
      diff.removed.push(name);
      diff.proxyChanged = true;
    }
  }
  const { proxy: was, state_dir: stateBefore } = running;
  const { proxy: now } = next;
  if (!same(was.limits, now.limits) || !same(was.trusted_proxies, now.trusted_proxies) || was.access_log !== now.access_log) diff.proxyChanged = true;
  if (was.workers !== now.workers) {
    diff.proxyChanged = true;
    diff.proxyWorkers = { from: was.workers, to: now.workers };
  }
  if (!same(was.listen, now.listen)) diff.needsRestart.push("proxy.listen");
  if (!same(was.admin, now.admin)) diff.needsRestart.push("proxy.admin");
  if (!same(was.tls?.listen, now.tls?.listen) || (was.tls === undefined) !== (now.tls === undefined)) diff.needsRestart.push("proxy.tls");
  else if (!same(was.tls, now.tls)) diff.proxyChanged = true; // other certificate files: re-read
  if (stateBefore !== next.state_dir) diff.needsRestart.push("state_dir");
  return diff;
}

/** True when applying the diff changes nothing. */
export function isEmptyDiff(diff: ConfigDiff): boolean {
  return (
    diff.added.length + diff.removed.length + diff.rolled.length + diff.scaled.length + diff.watchChanged.length + diff.needsRestart.length === 0 &&
    !diff.proxyChanged
  );
}

/** One line per change, for the terminal and the control API. */
export function describeDiff(diff: ConfigDiff): string[] {
  const lines: string[] = [];
  const added = diff.added.filter((app) => !diff.removed.includes(app));
  const replaced = diff.added.filter((app) => diff.removed.includes(app));
  if (added.length) lines.push(`added ${added.join(", ")}`);
  if (replaced.length) lines.push(`replaced ${replaced.join(", ")} (a different kind of app)`);
  const removed = diff.removed.filter((app) => !diff.added.includes(app));
  if (removed.length) lines.push(`removed ${removed.join(", ")}`);
  if (diff.rolled.length) lines.push(`reloading ${diff.rolled.join(", ")} onto new workers`);
  for (const { app, from, to } of diff.scaled) lines.push(`scaled ${app} ${from} -> ${to}`);
  if (diff.proxyWorkers) lines.push(`proxy processes ${diff.proxyWorkers.from} -> ${diff.proxyWorkers.to}`);
  if (diff.proxyChanged) lines.push("proxy routing and settings updated");
  if (diff.watchChanged.length) lines.push(`watching new files for ${diff.watchChanged.join(", ")}`);
  if (diff.needsRestart.length) lines.push(`changed, but needs a restart of the stack to apply: ${diff.needsRestart.join(", ")}`);
  return lines;
}
