/**
 * @module cli/main
 *
 * The command registry: one subcommand per feature, each defined in
 * cli/commands/ with its own flags and help. Errors a user can act on are
 * printed as one line and exit 1 (or the code the command chose); anything
 * else is a bug and keeps its stack.
 */
import { Command, CommanderError } from "commander";
import { createRequire } from "node:module";
import { registerServe } from "./commands/serve.ts";
import { registerUp } from "./commands/up.ts";
import { registerControlCommands } from "./commands/control.ts";
import { registerLogs } from "./commands/logs.ts";
import { registerValidate } from "./commands/validate.ts";
import { UsageError } from "./usage-error.ts";

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };

const program = new Command("tsgi-stack")
  .description("Host TypeScript web apps: TSGI gateway workers, a supervisor and a front proxy, from one YAML file.")
  .version(version)
  .showHelpAfterError()
  .exitOverride();

registerUp(program);
registerControlCommands(program);
registerLogs(program);
registerValidate(program);
registerServe(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  if (error instanceof UsageError) {
    process.stderr.write(`tsgi-stack: ${error.message}\n`);
    process.exit(error.exitCode);
  }
  throw error;
}
