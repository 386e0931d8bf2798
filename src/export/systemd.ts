/**
 * @module export/systemd
 *
 * The systemd unit that keeps a stack running on a machine: `tsgi-stack up`
 * as a service, started at boot, restarted when it fails, reloaded with
 * `systemctl reload` (SIGHUP: the stack's own zero-downtime reload) and
 * stopped with SIGTERM, given the time its workers' drain may take. pm2's
 * daemon and the workers run in the unit's control group: the stack stops
 * them itself on SIGTERM, and whatever a crashed stack left is killed by
 * systemd before the next start (KillMode=mixed), so a restart never finds
 * two stacks' workers.
 *
 * Pure: the unit's text from what the caller read (the config's file, its
 * stack id, the longest graceful_timeout) and where the program is.
 */
import path from "node:path";

export interface SystemdUnitInput {
  /** The config file, absolute. */
  configFile: string;
  /** The stack's id (stack/stack-id.ts): names the unit. */
  stackId: string;
  /** The longest graceful_timeout of the config's apps (ms): the drain a stop waits for. */
  drainMs: number;
  /** The Node binary and the CLI entry (absolute) that `ExecStart` runs. */
  node: string;
  cli: string;
  /** The user (and group) the stack runs as. */
  user: string;
  group?: string;
  /** `up --no-proxy`: the workers only, for nginx in front (export/nginx.ts). */
  noProxy?: boolean;
}

/** With nginx in front (`--no-proxy`), its workers connect to the stack's sockets: they must be group-writable. */
const NGINX_GROUP_ACCESS = "# nginx's workers connect to the stack's sockets: put their user in this unit's group (sockets are group-writable).\nUMask=0002\n";

/** What systemd may add to the drain before it kills: the proxy's close and pm2's own stop. */
const STOP_MARGIN_S = 15;

/** The unit's file name: the stack id's (`tsgi-3e832512.service`), so that two stacks on a machine never share one. */
export function unitName(stackId: string): string {
  return `${stackId}.service`;
}

/** A word of an ExecStart line, quoted when it needs to be (systemd's own quoting: double quotes, backslash escapes). */
function execWord(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `"${word.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\$/g, "$$$$").replace(/%/g, "%%")}"`;
}

/** A path in a setting that takes one (WorkingDirectory=): systemd takes it as written, with specifiers doubled. */
const pathSetting = (value: string) => value.replace(/%/g, "%%");

export function systemdUnit(input: SystemdUnitInput): string {
  const stopSeconds = Math.ceil(input.drainMs / 1000) + STOP_MARGIN_S;
  const exec = [input.node, input.cli, "up", "-c", input.configFile, ...(input.noProxy ? ["--no-proxy"] : [])].map(execWord).join(" ");
  return `# ${unitName(input.stackId)}: written by \`tsgi-stack export systemd\` from ${input.configFile}.
# Install it with \`tsgi-stack startup -c ${input.configFile}\`, or copy it to /etc/systemd/system/
# and run \`systemctl daemon-reload && systemctl enable --now ${unitName(input.stackId)}\`.
[Unit]
Description=tsgi-stack ${input.stackId} (${path.basename(input.configFile)})
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=${input.user}
${input.group ? `Group=${input.group}\n` : ""}WorkingDirectory=${pathSetting(path.dirname(input.configFile))}
# JSON lines for the journal (journalctl -u ${unitName(input.stackId)} -o cat).
Environment=TSGI_LOG_FORMAT=json
ExecStart=${exec}
# systemctl reload: the stack re-reads the file and rolls its workers with no downtime.
ExecReload=/bin/kill -HUP $MAINPID
# systemctl stop: the stack drains its workers (the longest graceful_timeout, ${input.drainMs} ms) and stops pm2;
# what is left after that is killed.
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec=${stopSeconds}
${input.noProxy ? NGINX_GROUP_ACCESS : ""}Restart=on-failure
RestartSec=2
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`;
}
