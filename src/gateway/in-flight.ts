/**
 * @module gateway/in-flight
 *
 * The requests a worker is running right now, across its HTTP and uwsgi
 * listeners: what graceful stop waits for, and what the --timeout check reads
 * (the oldest request's age). Each server registers a request when it starts
 * and releases it when its response closes, whatever the reason.
 */
export interface InFlightRequest {
  readonly method: string;
  readonly target: string;
  readonly startedAt: number;
  /** Drops the request's connection (used when it ran past --timeout or past the graceful deadline). */
  abort(): void;
  /** Asks the transport not to keep the connection alive after this response (used while draining). */
  closeAfterResponse(): void;
}

export class InFlight {
  private readonly requests = new Set<InFlightRequest>();
  private idleWaiters: Array<() => void> = [];
  private draining = false;
  /** Requests started since the worker booted, for --max-requests. */
  handled = 0;
  /** Called after each request is registered (the worker's --max-requests check). */
  onBegin: (() => void) | undefined;

  get size(): number {
    return this.requests.size;
  }

  begin(request: InFlightRequest): void {
    this.handled += 1;
    this.requests.add(request);
    this.onBegin?.();
    if (this.draining) request.closeAfterResponse();
  }

  end(request: InFlightRequest): void {
    if (!this.requests.delete(request)) return;
    if (this.requests.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** Every request older than `ageMs` at `now`. */
  olderThan(ageMs: number, now = Date.now()): InFlightRequest[] {
    return [...this.requests].filter((request) => now - request.startedAt > ageMs);
  }

  /** Marks every current and future response "Connection: close", so clients reconnect (to another worker). */
  closeConnections(): void {
    this.draining = true;
    for (const request of this.requests) request.closeAfterResponse();
  }

  /** closeConnections(), then resolves once no request is left in flight. */
  drain(): Promise<void> {
    this.closeConnections();
    if (this.requests.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  abortAll(): void {
    for (const request of [...this.requests]) {
      request.abort();
      this.end(request);
    }
  }
}
