/**
 * @module cli/config-file
 *
 * Which config file a command means (`-c FILE`, else `tsgi.yaml` in the
 * current folder), and the state folder of the stack it runs. Light on
 * purpose: the commands that talk to a running stack load only this, never
 * the config schema (cli/load-config.ts is the full load).
 */
import { existsSync, readFileSync } from "node:fs";
import { parse } from "yaml";
import path from "node:path";
import { expandString } from "../config/env.ts";
import { DEFAULT_CONFIG_FILE, DEFAULT_STATE_DIR, resolveFrom } from "../config/paths.ts";
import { ConfigFileNotFound } from "../config/errors.ts";

export { DEFAULT_CONFIG_FILE };

export function resolveConfigFile(flag: string | undefined): string {
  const file = path.resolve(flag ?? DEFAULT_CONFIG_FILE);
  if (!existsSync(file)) {
    throw new ConfigFileNotFound(
      flag ? `config file not found: ${file}` : `no ${DEFAULT_CONFIG_FILE} in ${process.cwd()}: pass -c FILE (config.example.yaml is a start)`,
      file,
    );
  }
  return file;
}

/**
 * The state folder of the stack a config file runs, for the commands that
 * talk to a running stack. Only `state_dir` is read (${VAR} expanded, the
 * default `.tsgi`, from the file's folder, as the full load gives it), not
 * the whole file validated: a file saved with a mistake elsewhere (which the
 * running stack ignores) must not lock its owner out of `status`, `reload` or
 * `down`; and these commands stay as quick as a CLI should be, without the
 * config schema (measured: TypeBox was a third of `status`'s wall time).
 */
export function stateDirOf(file: string, env: Readonly<Record<string, string | undefined>> = process.env): string {
  let stateDir: unknown;
  try {
    stateDir = (parse(readFileSync(file, "utf8")) as { state_dir?: unknown } | null)?.state_dir;
  } catch {
    stateDir = undefined;
  }
  const written = typeof stateDir === "string" ? expandString(stateDir, env, []) : "";
  return resolveFrom(path.dirname(path.resolve(file)), written || DEFAULT_STATE_DIR);
}
