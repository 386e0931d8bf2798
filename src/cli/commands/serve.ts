/**
 * @module cli/commands/serve
 *
 * `tsgi-stack serve MODULE[:EXPORT]`: one app served by gateway workers, like
 * `gunicorn module:app`. By default an arbiter process holds the sockets and
 * runs --workers workers (it restarts them, recycles them, chain-reloads them
 * on SIGHUP). With --no-arbiter this process is the worker itself: that is how
 * the supervisor runs workers under pm2, and what a container runtime wants.
 *
 * The worker's settings (--max-requests, --timeout, …) are not declared here:
 * their flags, help, defaults and parsers are rows of the worker settings
 * table (contract/worker-settings.ts), which also writes the supervisor's
 * arguments; this command adds the listeners, the arbiter and the app.
 */
import cluster from "node:cluster";
import { Command, Option } from "commander";
import { parseCount, parseSettings, SETTING_KINDS, SettingError, WORKER_SETTINGS, type WorkerSetting } from "../../contract/worker-settings.ts";
import { type ListenAddress, parseAddress } from "../../contract/address.ts";
import { INTERFACES, type InterfaceChoice } from "../../contract/module-spec.ts";
import { removeStaleSocket } from "../../gateway/address.ts";
import { guardOutput } from "../../gateway/output-guard.ts";
import { runWorker, type WorkerOptions } from "../../gateway/worker.ts";
import { runArbiter } from "../../gateway/arbiter.ts";
import { UsageError } from "../usage-error.ts";

interface ServeFlags {
  http?: string[];
  socket?: string[];
  uwsgi?: string[];
  uwsgiAllowIps?: string;
  interface: InterfaceChoice;
  workers: string;
  scriptName?: string;
  scriptNameHeader?: string;
  allowTrace?: boolean;
  chdir?: string;
  arbiter: boolean;
  multiprocess?: boolean;
  heartbeatFile?: string;
  /** The worker settings' flags, by commander's attribute name (settingOption). */
  [setting: string]: unknown;
}

const DEFAULT_HTTP = "127.0.0.1:8000";
const collect = (value: string, previous: string[] = []) => [...previous, value];

/** A setting's value errors are usage errors: one line naming the flag, exit code 2. */
function asUsageError<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof SettingError) throw new UsageError(error.message);
    throw error;
  }
}

function wholeNumber(value: string, flag: string): number {
  return asUsageError(() => parseCount(value, flag));
}

/** A worker setting's flag, with the table's placeholder, help and default. */
function settingOption(setting: WorkerSetting): Option {
  return new Option(`${setting.flag} ${SETTING_KINDS[setting.kind].metavar}`, setting.help).default(setting.default);
}

/** Where commander keeps a setting's value among the parsed flags (`--max-requests` -> maxRequests). */
function settingAttribute(setting: WorkerSetting): string {
  return new Option(setting.flag).attributeName();
}

function addresses(values: string[] | undefined, flag: string, allowUnix: boolean): ListenAddress[] {
  try {
    return (values ?? []).map((value) => parseAddress(value, flag, allowUnix));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Flags -> worker options; every value checked, every error naming its flag. */
export function workerOptionsFrom(spec: string, flags: ServeFlags): WorkerOptions {
  const http = [
    ...addresses(flags.http, "--http", false),
    ...(flags.socket ?? []).map((path): ListenAddress => ({ kind: "unix", path })),
  ];
  const uwsgi = addresses(flags.uwsgi, "--uwsgi", true);
  if (http.length === 0 && uwsgi.length === 0) http.push(parseAddress(DEFAULT_HTTP, "--http", false));
  const workers = wholeNumber(flags.workers, "--workers");
  const settings = asUsageError(() => parseSettings((setting) => flags[settingAttribute(setting)] as string | undefined));
  return {
    app: spec,
    cwd: flags.chdir,
    interface: flags.interface,
    http,
    uwsgi,
    uwsgiAllowIps: flags.uwsgiAllowIps?.split(",").map((ip) => ip.trim()).filter(Boolean),
    scriptName: flags.scriptName,
    scriptNameHeader: flags.scriptNameHeader,
    allowTrace: flags.allowTrace === true,
    ...settings,
    multiprocess: flags.multiprocess ?? (flags.arbiter && workers > 1),
    sharedListeners: cluster.isWorker,
    heartbeatFile: flags.heartbeatFile,
  };
}

/** The `serve` command's arguments and flags, without its action. */
function defineServe(program: Command): Command {
  const command = program
    .command("serve")
    .description("serve one app with gateway workers (like `gunicorn module:app`)")
    .argument("<module>", "path/to/app.ts[:export] (export defaults to `app`, then the default export)")
    .option("--http <host:port>", `serve HTTP/1.1 here; repeatable (default ${DEFAULT_HTTP} when no listener is given)`, collect)
    .option("--socket <path>", "serve HTTP/1.1 on a unix socket; repeatable", collect)
    .option("--uwsgi <host:port|path>", "serve the binary uwsgi protocol (for nginx uwsgi_pass); repeatable", collect)
    .option("--uwsgi-allow-ips <list>", "comma-separated peer IPs allowed on --uwsgi listeners, or * (default: loopback only)")
    .addOption(new Option("--interface <kind>", "how the export is called").choices(INTERFACES).default("auto"))
    .option("-w, --workers <n>", "worker processes", "1");
  for (const setting of WORKER_SETTINGS) command.addOption(settingOption(setting));
  return command
    .option("--script-name <path>", "the mount point the app is served under (SCRIPT_NAME)")
    .option("--script-name-header <name>", "take SCRIPT_NAME from this request header (only where nothing but your proxy reaches the worker)")
    .option("--allow-trace", "let TRACE requests reach the app (refused with 405 otherwise: TRACE echoes cookies and credentials)")
    .option("--chdir <dir>", "resolve the module from this directory")
    .option("--no-arbiter", "run one worker in this process, without a master (for supervisors and containers)")
    .option(
      "--heartbeat-file <path>",
      "with --timeout: touch this file every beat instead of running the watchdog thread, for a supervisor that kills the worker when the file goes stale",
    )
    .addOption(new Option("--multiprocess", "set tsgi.multiprocess (the supervisor runs several workers)").hideHelp());
}

export function registerServe(program: Command): void {
  defineServe(program).action(async (spec: string, flags: ServeFlags) => {
    const options = workerOptionsFrom(spec, flags);
    // Under the stack, stdout and stderr are the slot's log files: a full disk must cost lines, not the worker.
    guardOutput(process.stdout);
    guardOutput(process.stderr);
    if (!flags.arbiter || cluster.isWorker) return runWorker(options);
    // The arbiter owns the sockets its workers share: clear a dead predecessor's socket files first.
    for (const address of [...options.http, ...options.uwsgi]) {
      if (address.kind === "unix") await removeStaleSocket(address.path);
    }
    await runArbiter({ workers: Math.max(1, wholeNumber(flags.workers, "--workers")), gracefulTimeoutMs: options.gracefulTimeoutMs });
  });
}

/**
 * `serve`'s arguments as the worker reads them, through the same command
 * definition and parsing, without running anything: what a worker given
 * these arguments (by the supervisor, say) would be told to do.
 */
export async function parseServeArgs(args: readonly string[]): Promise<{ spec: string; options: WorkerOptions }> {
  let parsed: { spec: string; options: WorkerOptions } | undefined;
  const program = new Command().exitOverride();
  defineServe(program).action((spec: string, flags: ServeFlags) => {
    parsed = { spec, options: workerOptionsFrom(spec, flags) };
  });
  await program.parseAsync([...args], { from: "user" });
  if (!parsed) throw new UsageError(`not a serve command line: ${args.join(" ")}`);
  return parsed;
}
