/**
 * @module proxy/health/passive
 *
 * Passive health, as nginx's max_fails / fail_timeout: a worker that fails
 * `maxFails` times within `failTimeoutMs` is left out of balancing for
 * `failTimeoutMs`, then tried again. A failure is a connection that could not
 * be made or broke before a response — not an HTTP error status, which is the
 * app's answer. When every worker of an app is left out, all are tried again
 * (nginx does the same): refusing everyone helps no one.
 */

export interface PassiveHealthOptions {
  /** Failures within the window that take a worker out (nginx's default: 1). */
  maxFails: number;
  /** The window, and how long a worker stays out (ms; nginx's default: 10 s). */
  failTimeoutMs: number;
}

export const NGINX_PASSIVE_DEFAULTS: PassiveHealthOptions = { maxFails: 1, failTimeoutMs: 10_000 };

export class PassiveHealth {
  private readonly failures = new Map<string, number[]>();
  private readonly outUntil = new Map<string, number>();

  constructor(private readonly options: PassiveHealthOptions = NGINX_PASSIVE_DEFAULTS) {}

  recordFailure(key: string, now = Date.now()): void {
    const recent = (this.failures.get(key) ?? []).filter((at) => now - at < this.options.failTimeoutMs);
    recent.push(now);
    this.failures.set(key, recent);
    if (recent.length >= this.options.maxFails) this.outUntil.set(key, now + this.options.failTimeoutMs);
  }

  recordSuccess(key: string): void {
    this.failures.delete(key);
  }

  isOut(key: string, now = Date.now()): boolean {
    const until = this.outUntil.get(key);
    if (until === undefined) return false;
    if (now < until) return true;
    this.outUntil.delete(key);
    return false;
  }

  /** The candidates that are not out; all of them when every one is. */
  available<T>(candidates: readonly T[], keyOf: (candidate: T) => string, now = Date.now()): readonly T[] {
    const usable = candidates.filter((candidate) => !this.isOut(keyOf(candidate), now));
    return usable.length > 0 ? usable : candidates;
  }

  /** Forgets a worker (it left the pool, or was replaced by a new process). */
  forget(key: string): void {
    this.failures.delete(key);
    this.outUntil.delete(key);
  }
}
