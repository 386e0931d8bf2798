/**
 * @module cli/commands/validate
 *
 * `tsgi-stack validate [-c FILE]` (issue #3): loads the config the way `up`
 * does and prints EVERY error, one per line, as `file:line:column key.path:
 * message` on stderr, exiting 1; a good file gets a one-line summary on
 * stdout and exit 0. Like `nginx -t`, it starts nothing.
 */
import type { Command } from "commander";
import { DEFAULT_CONFIG_FILE, type Environment, type StackConfig, loadConfig } from "../../config/load.ts";

export interface ValidateIo {
  stdout(line: string): void;
  stderr(line: string): void;
  env?: Environment;
}

const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? "" : "s"}`;

/** `3 apps (hello, express, legacy), 5 instances, 4 routes`. */
export function summarize(config: StackConfig): string {
  const apps = Object.entries(config.apps);
  const instances = apps.reduce((sum, [, app]) => sum + app.instances, 0);
  const routes = apps.reduce((sum, [, app]) => sum + app.routes.length, 0);
  const names = apps.map(([name]) => name).join(", ");
  return `${plural(apps.length, "app")} (${names}), ${plural(instances, "instance")}, ${plural(routes, "route")}`;
}

/** Validates one file; returns the exit code (0 good, 1 bad). */
export function validateFile(file: string, io: ValidateIo): number {
  const result = loadConfig(file, io.env ?? process.env);
  if (!result.ok) {
    for (const error of result.errors) io.stderr(error.format());
    return 1;
  }
  io.stdout(`${file}: ok: ${summarize(result.config)}`);
  return 0;
}

export function registerValidate(program: Command): void {
  program
    .command("validate")
    .description("check a config file and list every error in it (starts nothing)")
    .option("-c, --config <file>", "the config file", DEFAULT_CONFIG_FILE)
    .action((flags: { config: string }) => {
      process.exitCode = validateFile(flags.config, {
        stdout: (line) => process.stdout.write(`${line}\n`),
        stderr: (line) => process.stderr.write(`${line}\n`),
      });
    });
}
