/**
 * @module contract/exit-codes
 *
 * How a gateway worker says why it exited, so that whoever runs it (our
 * supervisor over pm2, the standalone arbiter of `serve`) knows what to do
 * next. This is Gunicorn's WORKER_BOOT_ERROR / APP_LOAD_ERROR model: a worker
 * that cannot load its app or bind its address will fail the same way on
 * every restart, so on those two codes the supervisor halts the pool instead
 * of restart-looping, and tells pm2 not to restart either (stop_exit_codes).
 *
 * Defined here, below both the worker and the supervisor, so that there is
 * one copy: the worker exits with these numbers, the supervisor judges them.
 */
export const ExitCode = {
  /** A graceful stop, a recycle after --max-requests: replace the worker if it is still wanted. */
  OK: 0,
  /** The worker could not start serving (address in use, bad flags): do not restart. */
  BOOT_ERROR: 3,
  /** The app module is missing, throws on import, or exports nothing callable: do not restart. */
  APP_LOAD_ERROR: 4,
  /** A request ran past --timeout: the worker left to be replaced (uWSGI's harakiri). */
  TIMEOUT: 5,
} as const;

export type ExitCodeName = keyof typeof ExitCode;
export type ExitCodeValue = (typeof ExitCode)[ExitCodeName];

/** The exit codes after which a restart would fail the same way. */
export const FATAL_EXIT_CODES: readonly ExitCodeValue[] = [ExitCode.BOOT_ERROR, ExitCode.APP_LOAD_ERROR];

/** True for the exit codes after which a restart would fail the same way. */
export function isFatalExit(code: number | null): boolean {
  return code !== null && (FATAL_EXIT_CODES as readonly number[]).includes(code);
}

/** `APP_LOAD_ERROR` for 4; undefined for a code that is not one of the worker's own (1, 137, …). */
export function exitCodeName(code: number): ExitCodeName | undefined {
  return (Object.keys(ExitCode) as ExitCodeName[]).find((name) => ExitCode[name] === code);
}
