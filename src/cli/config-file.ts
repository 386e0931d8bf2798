/**
 * @module cli/config-file
 *
 * Which config file a command means (`-c FILE`, else `tsgi.yaml` in the
 * current folder), loaded and validated: every error printed as
 * `file:line:column key: message`, exit 1 — before anything starts.
 */
import { existsSync, readFileSync } from "node:fs";
import { parse } from "yaml";
import path from "node:path";
import { DEFAULT_CONFIG_FILE, loadConfig } from "../config/load.ts";
import type { StackConfig } from "../config/schema.ts";
import { UsageError } from "./usage-error.ts";

export { DEFAULT_CONFIG_FILE };

export function resolveConfigFile(flag: string | undefined): string {
  const file = path.resolve(flag ?? DEFAULT_CONFIG_FILE);
  if (!existsSync(file)) {
    throw new UsageError(
      flag ? `config file not found: ${file}` : `no ${DEFAULT_CONFIG_FILE} in ${process.cwd()}: pass -c FILE (config.example.yaml is a start)`,
      1,
    );
  }
  return file;
}

/**
 * The state folder of the stack a config file runs, for the commands that
 * talk to a running stack: read leniently, so that a file saved with a
 * mistake (which the running stack ignores) does not lock its owner out of
 * `status`, `reload` or `down`.
 */
export function stateDirOf(file: string): string {
  const result = loadConfig(file);
  if (result.ok) return result.config.state_dir;
  let stateDir: unknown;
  try {
    stateDir = (parse(readFileSync(file, "utf8")) as { state_dir?: unknown } | null)?.state_dir;
  } catch {
    stateDir = undefined;
  }
  return path.resolve(path.dirname(file), typeof stateDir === "string" ? stateDir : ".tsgi");
}

/** Loads and validates; on errors prints each one and throws a UsageError (exit 1). */
export function loadOrFail(file: string): StackConfig {
  const result = loadConfig(file);
  if (result.ok) return result.config;
  for (const error of result.errors) process.stderr.write(`${error.format()}\n`);
  const count = result.errors.length;
  throw new UsageError(`${path.relative(process.cwd(), file) || file}: ${count} error${count === 1 ? "" : "s"}, nothing started`, 1);
}
