/**
 * @module cli/main
 *
 * The command registry: one subcommand per feature, each defined in
 * cli/commands/ with its own flags and help. Errors a user can act on (the
 * catalog's, src/errors.ts) are printed as one line and exit 1 (or the code a
 * UsageError chose); anything else is a bug and keeps its stack. The code is
 * not printed: it is for programs (the control API's answers carry it), and
 * docs/errors.md finds an error by its message as well.
 */
import { Command, CommanderError } from "commander";
import { createRequire } from "node:module";
import { TsgiStackError } from "../errors.ts";
import { UsageError } from "./usage-error.ts";

type Register = (program: Command) => void;

/**
 * Every subcommand, by name, with the module that defines it. Modules load
 * only when their command runs (all of them for --help): a gateway worker
 * runs `serve`, and must not pay for the config schema, the supervisor and
 * the proxy it never uses — measured, that was 1.3 s and 23 MB of each
 * worker's boot.
 */
const COMMANDS: Readonly<Record<string, () => Promise<Register>>> = {
  up: async () => (await import("./commands/up.ts")).registerUp,
  down: async () => (await import("./commands/control.ts")).registerControlCommands,
  status: async () => (await import("./commands/control.ts")).registerControlCommands,
  reload: async () => (await import("./commands/control.ts")).registerControlCommands,
  restart: async () => (await import("./commands/control.ts")).registerControlCommands,
  scale: async () => (await import("./commands/control.ts")).registerControlCommands,
  logs: async () => (await import("./commands/logs.ts")).registerLogs,
  validate: async () => (await import("./commands/validate.ts")).registerValidate,
  serve: async () => (await import("./commands/serve.ts")).registerServe,
  export: async () => (await import("./commands/export.ts")).registerExport,
  startup: async () => (await import("./commands/export.ts")).registerExport,
};

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };

const program = new Command("tsgi-stack")
  .description("Host TypeScript web apps: TSGI gateway workers, a supervisor and a front proxy, from one YAML file.")
  .version(version)
  .showHelpAfterError()
  .exitOverride();

const named = process.argv[2];
const loaders = named !== undefined && named in COMMANDS ? [COMMANDS[named]!] : Object.values(COMMANDS);
const registered = new Set<Register>();
for (const load of loaders) {
  const register = await load();
  if (registered.has(register)) continue; // one module may define several commands
  registered.add(register);
  register(program);
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  if (error instanceof TsgiStackError) {
    process.stderr.write(`tsgi-stack: ${error.message}\n`);
    process.exit(error instanceof UsageError ? error.exitCode : 1);
  }
  throw error;
}
