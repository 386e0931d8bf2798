/**
 * @module stack/errors
 *
 * Why a stack did not start, or `up` did not run one: the STACK group of the
 * catalog (src/errors.ts, docs/errors.md). Start order (stack/stack.ts)
 * makes each of these leave nothing running; `up` prints the message and
 * exits 1. Plain data and messages: no I/O here.
 */
import { errorGroup, TsgiStackError } from "../errors.ts";
import type { PoolReport } from "../supervisor/types.ts";

/** Why `start` failed: one line per app that could not start, and their reports (with the workers' stderr). */
export class StackStartError extends TsgiStackError {
  static readonly code = "TSGI_ERR_STACK_APPS_FAILED";

  constructor(
    lines: string[],
    readonly reports: PoolReport[],
  ) {
    super(lines.join("\n"), { at: reports.map((report) => report.app).join(", ") });
  }
}

/**
 * An address of the config cannot be listened on. `errno` is the system's
 * name for why (EADDRINUSE: in use; EACCES: a port below 1024 without the
 * right; ENOTFOUND: a host name that does not resolve), when there is one.
 */
export class ListenFailed extends TsgiStackError {
  static readonly code = "TSGI_ERR_STACK_LISTEN";

  constructor(
    readonly address: string,
    readonly reason: string,
    readonly errno?: string,
    /** The config key that names the address (`proxy.listen[0]`, `proxy.admin`), when known. */
    readonly key?: string,
  ) {
    super(`${key ? `${key}: ` : ""}cannot listen on ${address}: ${reason}`, { at: key ?? address });
  }

  /** The same failure, told with the config key that names the address. */
  withKey(key: string): ListenFailed {
    return new ListenFailed(this.address, this.reason, this.errno, key);
  }
}

/** proxy.tls.cert or proxy.tls.key cannot be read or is not a certificate/key; `key` is the config key at fault. */
export class TlsCredentialsInvalid extends TsgiStackError {
  static readonly code = "TSGI_ERR_STACK_TLS";

  constructor(
    readonly key: "proxy.tls.cert" | "proxy.tls.key",
    reason: string,
  ) {
    super(`${key}: ${reason}`, { at: key });
  }
}

/** A proxy process exited, or did not serve in time, while the stack started. */
export class ProxyStartFailed extends TsgiStackError {
  static readonly code = "TSGI_ERR_STACK_PROXY_START";
}

/**
 * state_dir cannot be created or written (it holds pm2's home, the sockets, the logs): a read-only or full
 * disk, or missing rights. `path` is what failed — the folder itself, a folder or file in it, or the
 * parent it could not be made in — and the message ends with the system's reason (EROFS, EACCES, ENOSPC).
 */
export class StateDirUnwritable extends TsgiStackError {
  static readonly code = "TSGI_ERR_STACK_STATE_DIR";

  constructor(
    readonly stateDir: string,
    cause: Error,
    readonly path: string = stateDir,
  ) {
    super(
      `state_dir ${stateDir} ${path === stateDir ? "is" : `cannot be used: ${path} is`} not writable: ${(cause as NodeJS.ErrnoException).code ? reasonOf(cause) : cause.message}`,
      { at: path, cause },
    );
  }
}

/** `EROFS: read-only file system` out of node's `EROFS: read-only file system, access '/x'`: the path is in the message already. */
function reasonOf(cause: Error): string {
  return cause.message.replace(/, \w+(?: '[^']*')?$/, "");
}

/** `up` found the state dir in use by the stack of another config file (two files in one folder share `.tsgi` by default). */
export class StateDirInUse extends TsgiStackError {
  static readonly code = "TSGI_ERR_STACK_STATE_DIR_IN_USE";

  constructor(
    readonly stateDir: string,
    readonly file: string,
    readonly otherFile: string,
    pid: number | undefined,
  ) {
    super(
      `state_dir ${stateDir} is in use by the stack of ${otherFile}${pid ? ` (pid ${pid})` : ""}: give ${file} a state_dir of its own, or stop that stack first`,
      { at: stateDir },
    );
  }
}

/** `up` found a stack of the same config file already answering on its control socket. */
export class StackAlreadyRunning extends TsgiStackError {
  static readonly code = "TSGI_ERR_STACK_ALREADY_RUNNING";

  constructor(
    message: string,
    readonly file: string,
  ) {
    super(message, { at: file });
  }
}

/** `up --detach`: the background stack exited, or did not report running in time; the message ends with its log's tail. */
export class DetachedStartFailed extends TsgiStackError {
  static readonly code = "TSGI_ERR_STACK_DETACH_FAILED";
}

/** TSGI_LOG_FORMAT holds neither format of the stack's log (stack/stack-log.ts). */
export class LogFormatInvalid extends TsgiStackError {
  static readonly code = "TSGI_ERR_STACK_LOG_FORMAT";

  constructor(variable: string, value: string) {
    super(`${variable}=${value}: the stack's log format is "pretty" or "json"`, { at: variable });
  }
}

/** The stack's start failures, for the catalog (docs/errors.md). */
export const stackErrors = errorGroup("STACK", [
  StackStartError,
  ListenFailed,
  TlsCredentialsInvalid,
  ProxyStartFailed,
  StateDirUnwritable,
  StackAlreadyRunning,
  StateDirInUse,
  DetachedStartFailed,
  LogFormatInvalid,
]);
