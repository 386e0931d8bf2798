/**
 * @module cli/commands/export
 *
 * `tsgi-stack export systemd [-c FILE] [--user U] [--group G] [-o FILE]`:
 * the systemd unit that runs this config's stack (export/systemd.ts), on
 * stdout or into a file; and `tsgi-stack startup [-c FILE] [--user U]
 * [--dry-run]`, pm2's `startup` for this stack: the unit written to
 * /etc/systemd/system, systemd told, the stack enabled and started — or,
 * with --dry-run, what it would write and run, changing nothing.
 */
import { execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Command } from "commander";
import { systemdUnit, unitName } from "../../export/systemd.ts";
import { StartupUnavailable } from "../../export/errors.ts";
import { stackIdFor } from "../../stack/stack-id.ts";
import { CLI_BIN } from "../../supervisor/launch.ts";
import { resolveConfigFile } from "../config-file.ts";
import { loadOrFail } from "../load-config.ts";

/** Where systemd reads the units an administrator installs. */
const UNIT_DIR = "/etc/systemd/system";
/** Present when systemd is the running init (sd_booted()'s own test). */
const SYSTEMD_RUNNING = "/run/systemd/system";

interface UnitFlags {
  config?: string;
  user?: string;
  group?: string;
}

/** The user the stack runs as: --user, else the one who ran sudo, else whoever runs this. */
function userOf(flags: UnitFlags): string {
  return flags.user ?? process.env.SUDO_USER ?? os.userInfo().username;
}

function unitFor(flags: UnitFlags): { name: string; text: string } {
  const file = path.resolve(resolveConfigFile(flags.config));
  const config = loadOrFail(file);
  const stackId = stackIdFor(file);
  const drainMs = Math.max(0, ...Object.values(config.apps).map((app) => app.graceful_timeout));
  const text = systemdUnit({
    configFile: file,
    stackId,
    drainMs,
    node: process.execPath,
    cli: CLI_BIN,
    user: userOf(flags),
    ...(flags.group ? { group: flags.group } : {}),
  });
  return { name: unitName(stackId), text };
}

export function registerExport(program: Command): void {
  const exporters = program.command("export").description("write this config's stack for another engine to run (systemd)");
  exporters
    .command("systemd")
    .description("the systemd unit that runs `tsgi-stack up` for this config: restarted on failure, `systemctl reload` as SIGHUP, stop as SIGTERM with the drain time")
    .option("-c, --config <file>", "the config file (default ./tsgi.yaml)")
    .option("--user <name>", "the user the stack runs as (default: the one who ran sudo, or you)")
    .option("--group <name>", "its group (default: the user's)")
    .option("-o, --output <file>", "write the unit there instead of printing it")
    .action((flags: UnitFlags & { output?: string }) => {
      const { text } = unitFor(flags);
      if (flags.output) writeFileSync(flags.output, text);
      else process.stdout.write(text);
    });

  program
    .command("startup")
    .description("start this config's stack at boot under systemd (as `pm2 startup`): install its unit, enable and start it")
    .option("-c, --config <file>", "the config file (default ./tsgi.yaml)")
    .option("--user <name>", "the user the stack runs as (default: the one who ran sudo, or you)")
    .option("--group <name>", "its group (default: the user's)")
    .option("--dry-run", "print the unit and the commands, change nothing")
    .action((flags: UnitFlags & { dryRun?: boolean }) => {
      const { name, text } = unitFor(flags);
      const target = path.join(UNIT_DIR, name);
      const commands = [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", name],
      ];
      if (flags.dryRun) {
        process.stdout.write(`# would write ${target}:\n${text}\n# then run:\n${commands.map((command) => command.join(" ")).join("\n")}\n`);
        return;
      }
      if (!existsSync(SYSTEMD_RUNNING)) {
        throw new StartupUnavailable(
          `startup: systemd is not running here (no ${SYSTEMD_RUNNING}): write the unit with \`tsgi-stack export systemd\` for a machine that has it, or run the stack under your own supervisor`,
          { at: SYSTEMD_RUNNING },
        );
      }
      try {
        writeFileSync(target, text);
      } catch (error) {
        throw new StartupUnavailable(`startup: cannot write ${target}: ${(error as Error).message} (run it with sudo)`, { at: target, cause: error as Error });
      }
      for (const command of commands) execFileSync(command[0]!, command.slice(1), { stdio: "inherit" });
      process.stdout.write(`tsgi-stack: ${name} installed, enabled and started; \`systemctl status ${name}\` shows it, \`journalctl -u ${name}\` its log\n`);
    });
}
