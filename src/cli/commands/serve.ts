/**
 * @module cli/commands/serve
 *
 * `tsgi-stack serve MODULE[:EXPORT]`: one app served by gateway workers, like
 * `gunicorn module:app`. By default an arbiter process holds the sockets and
 * runs --workers workers (it restarts them, recycles them, chain-reloads them
 * on SIGHUP). With --no-arbiter this process is the worker itself: that is how
 * the supervisor runs workers under pm2, and what a container runtime wants.
 */
import cluster from "node:cluster";
import { type Command, Option } from "commander";
import { parseDuration } from "../../config/units.ts";
import { type ListenAddress, parseAddress } from "../../contract/address.ts";
import { INTERFACES, type InterfaceChoice } from "../../contract/module-spec.ts";
import { removeStaleSocket } from "../../gateway/address.ts";
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
  maxRequests: string;
  maxRequestsJitter: string;
  timeout: string;
  gracefulTimeout: string;
  keepAlive: string;
  scriptName?: string;
  scriptNameHeader?: string;
  chdir?: string;
  arbiter: boolean;
  multiprocess?: boolean;
  heartbeatFile?: string;
}

const DEFAULT_HTTP = "127.0.0.1:8000";
const collect = (value: string, previous: string[] = []) => [...previous, value];

function wholeNumber(value: string, flag: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} ${JSON.stringify(value)}: expected a whole number`);
  return Number(value);
}

function duration(value: string, flag: string): number {
  try {
    return parseDuration(value, flag);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
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
  return {
    app: spec,
    cwd: flags.chdir,
    interface: flags.interface,
    http,
    uwsgi,
    uwsgiAllowIps: flags.uwsgiAllowIps?.split(",").map((ip) => ip.trim()).filter(Boolean),
    scriptName: flags.scriptName,
    scriptNameHeader: flags.scriptNameHeader,
    maxRequests: wholeNumber(flags.maxRequests, "--max-requests"),
    maxRequestsJitter: wholeNumber(flags.maxRequestsJitter, "--max-requests-jitter"),
    timeoutMs: duration(flags.timeout, "--timeout"),
    gracefulTimeoutMs: duration(flags.gracefulTimeout, "--graceful-timeout"),
    keepAliveTimeoutMs: duration(flags.keepAlive, "--keep-alive"),
    multiprocess: flags.multiprocess ?? (flags.arbiter && workers > 1),
    sharedListeners: cluster.isWorker,
    heartbeatFile: flags.heartbeatFile,
  };
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("serve one app with gateway workers (like `gunicorn module:app`)")
    .argument("<module>", "path/to/app.ts[:export] (export defaults to `app`, then the default export)")
    .option("--http <host:port>", `serve HTTP/1.1 here; repeatable (default ${DEFAULT_HTTP} when no listener is given)`, collect)
    .option("--socket <path>", "serve HTTP/1.1 on a unix socket; repeatable", collect)
    .option("--uwsgi <host:port|path>", "serve the binary uwsgi protocol (for nginx uwsgi_pass); repeatable", collect)
    .option("--uwsgi-allow-ips <list>", "comma-separated peer IPs allowed on --uwsgi listeners, or * (default: loopback only)")
    .addOption(new Option("--interface <kind>", "how the export is called").choices(INTERFACES).default("auto"))
    .option("-w, --workers <n>", "worker processes", "1")
    .option("--max-requests <n>", "recycle a worker after this many requests (0: never)", "0")
    .option("--max-requests-jitter <n>", "add a random 0..n to --max-requests per worker", "0")
    .option("--timeout <duration>", "a request running longer makes its worker leave for replacement (0: never)", "30s")
    .option("--graceful-timeout <duration>", "how long a stopping worker waits for in-flight requests", "30s")
    .option("--keep-alive <duration>", "idle keep-alive connection lifetime", "5s")
    .option("--script-name <path>", "the mount point the app is served under (SCRIPT_NAME)")
    .option("--script-name-header <name>", "take SCRIPT_NAME from this request header (only where nothing but your proxy reaches the worker)")
    .option("--chdir <dir>", "resolve the module from this directory")
    .option("--no-arbiter", "run one worker in this process, without a master (for supervisors and containers)")
    .option(
      "--heartbeat-file <path>",
      "with --timeout: touch this file every beat instead of running the watchdog thread, for a supervisor that kills the worker when the file goes stale",
    )
    .addOption(new Option("--multiprocess", "set tsgi.multiprocess (the supervisor runs several workers)").hideHelp())
    .action(async (spec: string, flags: ServeFlags) => {
      const options = workerOptionsFrom(spec, flags);
      if (!flags.arbiter || cluster.isWorker) return runWorker(options);
      // The arbiter owns the sockets its workers share: clear a dead predecessor's socket files first.
      for (const address of [...options.http, ...options.uwsgi]) {
        if (address.kind === "unix") await removeStaleSocket(address.path);
      }
      await runArbiter({ workers: Math.max(1, wholeNumber(flags.workers, "--workers")), gracefulTimeoutMs: options.gracefulTimeoutMs });
    });
}
