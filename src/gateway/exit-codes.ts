/**
 * @module gateway/exit-codes
 *
 * How a worker says why it exited, so its supervisor knows what to do next
 * (Gunicorn's WORKER_BOOT_ERROR / APP_LOAD_ERROR). A worker that cannot load
 * its app or bind its address will fail the same way on every restart: the
 * supervisor halts instead of restart-looping on these two codes.
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

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** True for the exit codes after which a restart would fail the same way. */
export function isFatalExit(code: number | null): boolean {
  return code === ExitCode.BOOT_ERROR || code === ExitCode.APP_LOAD_ERROR;
}
