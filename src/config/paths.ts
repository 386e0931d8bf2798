/**
 * @module config/paths
 *
 * Paths in the config are relative to the config file's folder,
 * whatever the directory `tsgi-stack` runs in.
 * A module spec is `file[:export]` and its file is found the way the gateway
 * finds it (contract/module-spec.ts: the split and the extensions tried), so
 * that `validate` and `serve` agree on what exists. The file system is reached only through a Probe, which the
 * loader passes in: these functions stay pure.
 */
import nodePath from "node:path";
import { MODULE_EXTENSIONS } from "../contract/module-spec.ts";

/** What is at an absolute path: a file, a folder, or nothing. */
export type Probe = (absolutePath: string) => "file" | "dir" | undefined;


/** The config file a command reads when not given `-c FILE`. */
export const DEFAULT_CONFIG_FILE = "tsgi.yaml";

/** Where a stack keeps its state when the file does not say (schema.ts `state_dir`). */
export const DEFAULT_STATE_DIR = ".tsgi";

export function resolveFrom(dir: string, relative: string): string {
  return nodePath.resolve(dir, relative);
}

/** The module file a spec names, absolute, or undefined when no candidate is a file. */
export function resolveModuleFile(dir: string, modulePath: string, probe: Probe): string | undefined {
  const base = resolveFrom(dir, modulePath);
  for (const extension of MODULE_EXTENSIONS) {
    if (probe(base + extension) === "file") return base + extension;
  }
  return undefined;
}

/** A glob made absolute; a leading `!` (an exclusion) stays in front. */
export function resolveGlob(dir: string, glob: string): string {
  return glob.startsWith("!") ? `!${resolveFrom(dir, glob.slice(1))}` : resolveFrom(dir, glob);
}
