/**
 * @module proxy/health/active
 *
 * Active health checks (the `health: { path, interval, timeout }` of an
 * app): every interval, a GET of the health path on each ready worker,
 * through the same address the proxy forwards to. A worker that answers
 * anything but 2xx/3xx, or not within the timeout, is out of balancing until
 * a check passes again; one that passes is in. Checks run one at a time per
 * worker (a slow check is never stacked on another), on timers that never
 * keep the process alive. Results go to a listener, so that whoever owns
 * balancing (the FrontProxy) and whoever wants to know (the stack's log)
 * both hear of a change.
 */
import http from "node:http";
import type { Endpoint } from "../balancing/selector.ts";

export interface HealthCheckSpec {
  /** The path to GET, e.g. "/healthz". */
  path: string;
  intervalMs: number;
  timeoutMs: number;
}

export type HealthListener = (app: string, endpoint: Endpoint, healthy: boolean, reason: string) => void;

/** A worker's last check: when it ran, and why it failed (undefined: it passed). */
export interface CheckResult {
  at: number;
  failure?: string;
}

/** One GET of the health path; resolves with why it failed, or undefined when it passed. */
export function probe(endpoint: Endpoint, spec: HealthCheckSpec, host: string): Promise<string | undefined> {
  const address = endpoint.address;
  const target = address.kind === "unix" ? { socketPath: address.path } : { host: address.host, port: address.port };
  return new Promise((resolve) => {
    const request = http.get({ ...target, path: spec.path, agent: false, headers: { host, "user-agent": "tsgi-stack health check" } }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve(code >= 200 && code < 400 ? undefined : `GET ${spec.path} answered ${code}`);
    });
    request.setTimeout(spec.timeoutMs, () => request.destroy(new Error(`no answer within ${spec.timeoutMs} ms`)));
    request.on("error", (error) => resolve(`GET ${spec.path} failed: ${error.message}`));
  });
}

/** Runs the checks of one app over whatever endpoints it has now. */
export class ActiveHealthChecker {
  private timer: NodeJS.Timeout | undefined;
  private readonly running = new Set<string>();
  private readonly unhealthy = new Set<string>();
  /** The last result per worker process, for `status` (dropped with the worker: see forget). */
  private readonly results = new Map<string, CheckResult>();

  constructor(
    private readonly app: string,
    private readonly spec: HealthCheckSpec,
    private readonly endpoints: () => readonly Endpoint[],
    private readonly keyOf: (endpoint: Endpoint) => string,
    private readonly onChange: HealthListener,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.checkAll(), this.spec.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  isHealthy(endpoint: Endpoint): boolean {
    return !this.unhealthy.has(this.keyOf(endpoint));
  }

  /** The last check of a worker process (by its key); undefined before its first. */
  lastResult(key: string): CheckResult | undefined {
    return this.results.get(key);
  }

  /** A worker process left the pool: its record goes with it. */
  forget(key: string): void {
    this.results.delete(key);
    this.unhealthy.delete(key);
  }

  /** One round of checks (exposed so that tests need not wait for the timer). */
  async checkAll(): Promise<void> {
    await Promise.all(this.endpoints().map((endpoint) => this.check(endpoint)));
  }

  private async check(endpoint: Endpoint): Promise<void> {
    const key = this.keyOf(endpoint);
    if (this.running.has(key)) return;
    this.running.add(key);
    try {
      const failure = await probe(endpoint, this.spec, "localhost");
      this.results.set(key, failure === undefined ? { at: Date.now() } : { at: Date.now(), failure });
      const wasHealthy = !this.unhealthy.has(key);
      if (failure && wasHealthy) {
        this.unhealthy.add(key);
        this.onChange(this.app, endpoint, false, failure);
      } else if (!failure && !wasHealthy) {
        this.unhealthy.delete(key);
        this.onChange(this.app, endpoint, true, `GET ${this.spec.path} passed`);
      }
    } finally {
      this.running.delete(key);
    }
  }
}
