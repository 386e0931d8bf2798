/**
 * @module cli/usage-error
 *
 * An error the user made (a bad flag value, a missing file): the CLI prints
 * its message as one line and exits with its code, without a stack. It is
 * the CLI group of the catalog (src/errors.ts, docs/errors.md); a command
 * failing for a reason another room states (a config file with errors, a
 * stack not running, an address in use) throws that room's error instead,
 * and main.ts prints any catalog error the same way, exiting 1.
 */
import { errorGroup, TsgiStackError } from "../errors.ts";

export class UsageError extends TsgiStackError {
  static readonly code: string = "TSGI_ERR_CLI_USAGE";

  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

/** `down` asked the stack to stop, and its process is still there after the wait. */
export class StopTimeout extends UsageError {
  static override readonly code = "TSGI_ERR_CLI_STOP_TIMEOUT";

  constructor(
    message: string,
    readonly pid: number,
  ) {
    super(message, 1);
  }
}

/** `reload` did not apply: the config file has errors, or an app's new workers did not start (the old ones keep serving). */
export class ReloadFailed extends UsageError {
  static override readonly code = "TSGI_ERR_CLI_RELOAD_FAILED";

  constructor(message: string) {
    super(message, 1);
  }
}

/** `restart` or `scale` ended with an app short of ready workers (a new worker did not start, or the pool halted). */
export class NotAllReady extends UsageError {
  static override readonly code = "TSGI_ERR_CLI_NOT_ALL_READY";

  constructor(message: string) {
    super(message, 1);
  }
}

/** The CLI's own failures, for the catalog (docs/errors.md). */
export const cliErrors = errorGroup("CLI", [UsageError, StopTimeout, ReloadFailed, NotAllReady]);
