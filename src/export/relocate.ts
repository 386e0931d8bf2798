/**
 * @module export/relocate
 *
 * A loaded config as if its file lived elsewhere: what an export for
 * another machine or an image needs (`--config-path /srv/shop/tsgi.yaml`).
 * The loader resolves every path of the file against the file's folder
 * (modules, cwd, static folders, state_dir, certificates, watch globs); an
 * export written here for there must name the folder it will be found in
 * there. So every absolute path under this folder is moved under that one;
 * a path outside it (`/etc/ssl/…`) is the same on both machines and stays.
 * Pure: a config in, a config out.
 */
import path from "node:path";
import type { StackConfig } from "../config/schema.ts";

/** `value` with every string under `from` (the folder itself, or below it) moved under `to`. */
function moved<T>(value: T, from: string, to: string): T {
  if (typeof value === "string") {
    if (value === from) return to as T;
    if (value.startsWith(`${from}/`) || value.startsWith(`!${from}/`)) {
      const negated = value.startsWith("!");
      const rest = value.slice(from.length + (negated ? 1 : 0));
      return `${negated ? "!" : ""}${to}${rest}` as T;
    }
    return value;
  }
  if (Array.isArray(value)) return value.map((item) => moved(item, from, to)) as T;
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, moved(item, from, to)])) as T;
  }
  return value;
}

/**
 * The config loaded from `configFile`, with its paths as they would be had
 * it been loaded from `relocatedFile` (both absolute).
 */
export function relocate(config: StackConfig, configFile: string, relocatedFile: string): StackConfig {
  const from = path.dirname(configFile);
  const to = path.dirname(relocatedFile);
  return from === to ? config : moved(config, from, to);
}
