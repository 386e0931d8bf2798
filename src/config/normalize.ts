/**
 * @module config/normalize
 *
 * The last stage of loading, run only on data that passed
 * the schema and the checks: decode (the schema's transforms: `10s` -> 10000,
 * `256M` -> bytes, `host:port` -> `{ host, port }`, routes normalized), make
 * every path absolute from the config file's folder, and deep-freeze. The
 * result is what the rest of the stack reads, and what a reload compares:
 * two files that mean the same load to equal objects.
 */
import { Value } from "./typebox.ts";
import { type Probe, resolveFrom, resolveGlob, resolveModuleFile } from "./paths.ts";
import { parseModuleSpec } from "../contract/module-spec.ts";
import { type StackConfig, StackConfigSchema } from "./schema.ts";

/** Object.freeze, all the way down (Fastify's deepFreezeObject). */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** A module spec with its file made absolute (and found, extension and all): `/abs/app.ts[:export]`. */
function absoluteModule(dir: string, spec: string, probe: Probe): string {
  const { modulePath, exportName } = parseModuleSpec(spec);
  const file = resolveModuleFile(dir, modulePath, probe) ?? resolveFrom(dir, modulePath);
  return exportName === undefined ? file : `${file}:${exportName}`;
}

/** An `error_pages` map with its files made absolute (absent stays absent). */
function absolutePages(dir: string, pages: Readonly<Record<string, string>> | undefined): Record<string, string> | undefined {
  return pages && Object.fromEntries(Object.entries(pages).map(([key, file]) => [key, resolveFrom(dir, file)]));
}

/**
 * Valid data (expanded, defaulted, checked) -> the frozen StackConfig.
 * `dir` is the config file's folder.
 */
export function normalize(valid: unknown, dir: string, probe: Probe): StackConfig {
  const config = Value.Decode(StackConfigSchema, valid); // a fresh, still mutable object
  config.state_dir = resolveFrom(dir, config.state_dir);
  if (config.proxy.tls) {
    config.proxy.tls.cert = resolveFrom(dir, config.proxy.tls.cert);
    config.proxy.tls.key = resolveFrom(dir, config.proxy.tls.key);
  }
  config.proxy.error_pages = absolutePages(dir, config.proxy.error_pages);
  for (const app of Object.values(config.apps)) {
    app.error_pages = absolutePages(dir, app.error_pages);
    if (app.module !== undefined) app.module = absoluteModule(dir, app.module, probe);
    app.cwd = resolveFrom(dir, app.cwd);
    if (app.static !== undefined) app.static = resolveFrom(dir, app.static);
    app.watch = app.watch.map((glob) => resolveGlob(dir, glob));
  }
  return deepFreeze(config) as StackConfig;
}
