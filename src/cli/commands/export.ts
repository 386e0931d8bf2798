/**
 * @module cli/commands/export
 *
 * `tsgi-stack export systemd [-c FILE] [--user U] [--group G] [-o FILE]`:
 * the systemd unit that runs this config's stack (export/systemd.ts), on
 * stdout or into a file; `export k8s` and `export compose`, the stack as
 * Kubernetes manifests or a Compose file for an image of the config's folder
 * (export/k8s.ts, export/compose.ts), written only when the target can say
 * everything the config says, or with --force; and `tsgi-stack startup [-c FILE] [--user U]
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
import { k8sManifests } from "../../export/k8s.ts";
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

interface ImageFlags {
  config?: string;
  output?: string;
  force?: boolean;
  image?: string;
  namespace?: string;
}

/** The image when --image is not given: the config folder's name, as the user would tag a build of it. */
function defaultImage(file: string): string {
  const name = path.basename(path.dirname(file)).toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[^a-z0-9]+/, "");
  return `${name || "app"}:latest`;
}

/** Renders from the config, then writes: a refused export (Inexpressible) throws before anything is written. */
function writeExport(flags: ImageFlags, render: (file: string, config: ReturnType<typeof loadOrFail>) => string): void {
  const file = path.resolve(resolveConfigFile(flags.config));
  const text = render(file, loadOrFail(file));
  if (flags.output) writeFileSync(flags.output, text);
  else process.stdout.write(text);
}

export function registerExport(program: Command): void {
  const exporters = program.command("export").description("write this config's stack for another engine to run (systemd, Kubernetes, Compose)");
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

  exporters
    .command("k8s")
    .description("Kubernetes manifests: per worker app a Deployment (one gateway worker per pod), a Service and a ConfigMap of its env; Ingresses for its routes (ingress-nginx's annotations)")
    .option("-c, --config <file>", "the config file (default ./tsgi.yaml)")
    .option("--image <ref>", "the image the pods run: the config's folder at /app with its node_modules (default <folder name>:latest)")
    .option("--namespace <ns>", "the namespace of every object (default: kubectl's current one)")
    .option("--force", "write the nearest equivalent of what Kubernetes cannot express, listing the differences as comments at the top")
    .option("-o, --output <file>", "write the manifests there instead of printing them")
    .action((flags: ImageFlags) => {
      writeExport(flags, (file, config) =>
        k8sManifests({ config, configFile: file, image: flags.image ?? defaultImage(file), force: flags.force === true, ...(flags.namespace ? { namespace: flags.namespace } : {}) }),
      );
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
