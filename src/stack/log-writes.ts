/**
 * @module stack/log-writes
 *
 * What a log the stack writes lost to a failing disk (ENOSPC, EROFS, EIO):
 * a count of the lines dropped and the last error, for `status`. A full or
 * read-only disk must never take serving down, so a log write that fails is
 * dropped and counted here instead of thrown; this is how it stays visible.
 * Plain data and a counter: no I/O here.
 */

/** One log's failed writes, as `status --json` shows them under `logWrites`. */
export interface LogWriteFailures {
  /** Lines that could not be written since the stack started. */
  dropped: number;
  /** The last failure, when there was one. */
  lastError?: LogWriteError;
}

export interface LogWriteError {
  /** The system's name for it (ENOSPC, EROFS, EIO…), or the error's name when it has none. */
  code: string;
  message: string;
  /** When it happened (ISO time). */
  at: string;
}

/** The logs of a stack whose writes can fail: the proxy's access log, and the stack's own output (the terminal, or stack.log under `up -d`). */
export interface StackLogWrites {
  access: LogWriteFailures;
  stack: LogWriteFailures;
}

/** The error a failed write threw, as reported. */
export function logWriteError(error: unknown, at = new Date()): LogWriteError {
  const failure = error as NodeJS.ErrnoException;
  return { code: failure?.code ?? failure?.name ?? "Error", message: failure?.message ?? String(error), at: at.toISOString() };
}

/** Counts one log's dropped lines and keeps its last error. */
export class LogWriteCounter {
  private dropped = 0;
  private lastError: LogWriteError | undefined;

  record(lines: number, error: LogWriteError): void {
    this.dropped += lines;
    this.lastError = error;
  }

  snapshot(): LogWriteFailures {
    return { dropped: this.dropped, ...(this.lastError ? { lastError: { ...this.lastError } } : {}) };
  }
}
