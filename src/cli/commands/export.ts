/**
 * @module cli/commands/export
 *
 * `tsgi-stack export systemd [-c FILE] [--user U] [--group G] [-o FILE]`:
 * the systemd unit that runs this config's stack (export/systemd.ts), on
 * stdout or into a file; and `tsgi-stack startup [-c FILE] [--user U]
 * [--dry-run]`, pm2's `startup` for this stack: the unit written to
 * /etc/systemd/system, systemd told, the stack enabled and started — or,
 * with --dry-run, what it would write and run, changing nothing.
 *
 * `tsgi-stack export nginx [-c FILE] [--uwsgi|--http] [--force]`: the
 * nginx config that takes the front proxy's place in front of `up
 * --no-proxy` (export/nginx.ts), reaching the workers through the stack's
 * upstream links.
 *
 * `tsgi-stack export k8s|compose [-c FILE] [--image REF] [--force]`: the
 * stack for an image of its config (deploy/Dockerfile's layout by default),
 * as Kubernetes manifests (export/k8s.ts) or one Compose file with nginx in
 * front (export/compose.ts).
 */
import { execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { type Command, Option } from "commander";
import { systemdUnit, unitName } from "../../export/systemd.ts";
import { nginxConfig, type NginxProtocol } from "../../export/nginx.ts";
import { stackUpstreams } from "../../export/stack-upstreams.ts";
import { Differences } from "../../export/differences.ts";
import { statePaths } from "../../contract/state-dir.ts";
import type { StackConfig } from "../../config/schema.ts";
import { relocate } from "../../export/relocate.ts";
import { k8sManifests, stackName } from "../../export/k8s.ts";
import { composeFile } from "../../export/compose.ts";
import { IMAGE_CLI, IMAGE_ROOT } from "../../export/container.ts";
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
  /** Write for another machine: where the config file, node and the CLI will be there. */
  configPath?: string;
  node?: string;
  cli?: string;
  /** commander's `--no-proxy`: false when given. */
  proxy?: boolean;
}

/**
 * The config file and its config as the export is to name them: the file
 * read here, or, with `--config-path`, as if it lived there (the stack id,
 * which names units and upstreams, is the one it will have there).
 */
function configFor(flags: { config?: string; configPath?: string }): { file: string; config: StackConfig } {
  const file = path.resolve(resolveConfigFile(flags.config));
  const config = loadOrFail(file);
  if (!flags.configPath) return { file, config };
  const there = path.resolve(flags.configPath);
  return { file: there, config: relocate(config, file, there) };
}

const CONFIG_PATH_HELP = "write for another machine or an image: as if the config file were at this path there (its folder replaces this one in every path)";

/** The user the stack runs as: --user, else the one who ran sudo, else whoever runs this. */
function userOf(flags: UnitFlags): string {
  return flags.user ?? process.env.SUDO_USER ?? os.userInfo().username;
}

function unitFor(flags: UnitFlags): { name: string; text: string } {
  const { file, config } = configFor(flags);
  const stackId = stackIdFor(file);
  const drainMs = Math.max(0, ...Object.values(config.apps).map((app) => app.graceful_timeout));
  const text = systemdUnit({
    configFile: file,
    stackId,
    drainMs,
    node: flags.node ?? process.execPath,
    cli: flags.cli ?? CLI_BIN,
    noProxy: flags.proxy === false,
    user: userOf(flags),
    ...(flags.group ? { group: flags.group } : {}),
  });
  return { name: unitName(stackId), text };
}

/** Writes an export's text where -o says, or to stdout. */
function emit(text: string, output: string | undefined): void {
  if (output) writeFileSync(output, text);
  else process.stdout.write(text);
}

interface NginxFlags {
  config?: string;
  configPath?: string;
  uwsgi?: boolean;
  http?: boolean;
  logDir: string;
  force?: boolean;
  output?: string;
}

function exportNginx(flags: NginxFlags): void {
  const { file, config } = configFor(flags);
  const protocol: NginxProtocol = flags.http ? "http" : "uwsgi";
  const differences = new Differences();
  const body = nginxConfig(config, stackUpstreams(config, stackIdFor(file), protocol, flags.logDir), differences);
  const notes = differences.settle("nginx", path.basename(file), flags.force === true);
  const header = [
    `# nginx in front of the stack of ${file}: written by \`tsgi-stack export nginx${protocol === "http" ? " --http" : ""}\`.`,
    `# Run the stack without its own proxy (\`tsgi-stack up --no-proxy -c ${file}\`): nginx reaches each app's`,
    `# workers through the stack's upstream links in ${statePaths(config.state_dir).upstreams}/, whichever workers serve now.`,
    "# Include this file in nginx's http block (e.g. as /etc/nginx/conf.d/tsgi.conf), then `nginx -t && nginx -s reload`.",
    "# After scaling an app above its `instances`, export again: the upstreams list `instances` workers.",
    ...notes.map((line) => `# ${line}`),
    "",
  ];
  emit(`${header.join("\n")}${body}`, flags.output);
}

interface ImageFlags {
  config?: string;
  name?: string;
  configPath?: string;
  image?: string;
  cli: string;
  namespace?: string;
  force?: boolean;
  output?: string;
}

/**
 * The config as read here and as the image has it: relocated to
 * --config-path, by default the same file name in IMAGE_ROOT (where
 * deploy/Dockerfile puts the config); and the names taken from here.
 */
function imageConfig(flags: ImageFlags): { here: StackConfig; hereDir: string; file: string; config: StackConfig; name: string; image: string } {
  const local = path.resolve(resolveConfigFile(flags.config));
  const { config: here } = configFor({ config: local });
  const there = path.posix.resolve(flags.configPath ?? path.posix.join(IMAGE_ROOT, path.basename(local)));
  const name = flags.name === undefined ? stackName(local) : stackName(`/${flags.name}/x`);
  return { here, hereDir: path.dirname(local), file: there, config: relocate(here, local, there), name, image: flags.image ?? `${name}:latest` };
}

/** The options `export k8s` and `export compose` share. */
function imageOptions(command: Command, target: string): Command {
  return command
    .option("-c, --config <file>", "the config file (default ./tsgi.yaml)")
    .option("--name <name>", "the stack's name: the Compose project, Kubernetes' part-of label (default: the config folder's name)")
    .option("--image <ref>", "the image the workers run: tsgi-stack and the config with its apps, as deploy/Dockerfile builds it (default <name>:latest)")
    .option("--config-path <file>", `where the image has the config file (default ${IMAGE_ROOT}/<its name>; its folder replaces this one in every path)`)
    .option("--cli <path>", "tsgi-stack's dist/cli/bin.js in the image", IMAGE_CLI)
    .option("--force", `write the nearest equivalent of what ${target} cannot express, listing the differences as comments at the top`)
    .option("-o, --output <file>", "write it there instead of printing it");
}

export function registerExport(program: Command): void {
  const exporters = program.command("export").description("write this config's stack for another engine to run (systemd, nginx, Kubernetes, Compose)");
  exporters
    .command("systemd")
    .description("the systemd unit that runs `tsgi-stack up` for this config: restarted on failure, `systemctl reload` as SIGHUP, stop as SIGTERM with the drain time")
    .option("-c, --config <file>", "the config file (default ./tsgi.yaml)")
    .option("--user <name>", "the user the stack runs as (default: the one who ran sudo, or you)")
    .option("--group <name>", "its group (default: the user's)")
    .option("-o, --output <file>", "write the unit there instead of printing it")
    .option("--config-path <file>", CONFIG_PATH_HELP)
    .option("--node <path>", "the node binary ExecStart runs (default: this one)")
    .option("--cli <path>", "tsgi-stack's dist/cli/bin.js that ExecStart runs (default: this one)")
    .option("--no-proxy", "the unit runs `up --no-proxy`: the workers only, for nginx in front (`export nginx`)")
    .action((flags: UnitFlags & { output?: string }) => {
      emit(unitFor(flags).text, flags.output);
    });
  exporters
    .command("nginx")
    .description("the nginx config that takes the front proxy's place: upstreams, servers per host, locations per path, limits, WebSockets, static folders, TLS (run the stack with `up --no-proxy`)")
    .option("-c, --config <file>", "the config file (default ./tsgi.yaml)")
    .addOption(new Option("--uwsgi", "pass requests with uwsgi_pass (the default)").conflicts("http"))
    .addOption(new Option("--http", "pass requests with proxy_pass over HTTP/1.1").conflicts("uwsgi"))
    .option("--log-dir <dir>", "the folder of nginx's access log for the stack", "/var/log/nginx")
    .option("--force", "write the nearest equivalent of what nginx cannot express, listing the differences as comments")
    .option("--config-path <file>", CONFIG_PATH_HELP)
    .option("-o, --output <file>", "write the config there instead of printing it")
    .action((flags: NginxFlags) => exportNginx(flags));

  imageOptions(
    exporters
      .command("k8s")
      .description("Kubernetes manifests: per worker app a Deployment (one gateway worker per pod), a Service and a ConfigMap of its env; Ingresses for the routes, with ingress-nginx's annotations"),
    "Kubernetes",
  )
    .option("--namespace <ns>", "the namespace of every object (default: kubectl's current one)")
    .action((flags: ImageFlags) => {
      const { file, config, name, image } = imageConfig(flags);
      const namespace = flags.namespace ? { namespace: flags.namespace } : {};
      emit(k8sManifests({ config, configFile: file, name, image, cli: flags.cli, force: flags.force === true, ...namespace }), flags.output);
    });
  imageOptions(
    exporters
      .command("compose")
      .description("one Compose file: a service per worker app (the pods' command, replicas, healthcheck, env) and nginx in front with `export nginx`'s configuration inside"),
    "Compose with nginx",
  ).action((flags: ImageFlags) => {
    const { here, hereDir, file, config, name, image } = imageConfig(flags);
    emit(composeFile({ config, hostConfig: here, hostConfigDir: hereDir, configFile: file, name, image, cli: flags.cli, force: flags.force === true }), flags.output);
  });

  program
    .command("startup")
    .description("start this config's stack at boot under systemd (as `pm2 startup`): install its unit, enable and start it")
    .option("-c, --config <file>", "the config file (default ./tsgi.yaml)")
    .option("--user <name>", "the user the stack runs as (default: the one who ran sudo, or you)")
    .option("--group <name>", "its group (default: the user's)")
    .option("--no-proxy", "run `up --no-proxy`: the workers only, for nginx in front (`export nginx`)")
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
