/**
 * @module cli/load-config
 *
 * The config file loaded and validated for the commands that act on it
 * (`up`, `logs`): every error printed as `file:line:column key: message`,
 * exit 1 — before anything starts.
 */
import path from "node:path";
import { loadConfig } from "../config/load.ts";
import type { StackConfig } from "../config/schema.ts";
import { InvalidConfigFile } from "../config/errors.ts";

/** Loads and validates; on errors prints each one and throws an InvalidConfigFile (exit 1). */
export function loadOrFail(file: string): StackConfig {
  const result = loadConfig(file);
  if (result.ok) return result.config;
  for (const error of result.errors) process.stderr.write(`${error.format()}\n`);
  const count = result.errors.length;
  throw new InvalidConfigFile(`${path.relative(process.cwd(), file) || file}: ${count} error${count === 1 ? "" : "s"}, nothing started`, file, result.errors);
}
