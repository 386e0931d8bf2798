/**
 * @module proxy/upstream/pool
 *
 * The kept-alive connections to one worker process (nginx's upstream
 * `keepalive`): a connection goes back to the pool after a complete
 * exchange and the most recently used one is taken first (LIFO keeps a few
 * connections warm rather than all of them lukewarm). Two bounds:
 *   - at most `maxIdle` idle connections; more are closed;
 *   - none reused after `idleTimeoutMs` idle. This is the keep-alive race
 *     (the reliability matrix L5): a worker closes a connection idle for its own
 *     keep-alive timeout (5 s for gateway workers and node:http), and a
 *     request written to it just then is lost in flight. Keeping our limit
 *     below the worker's means the proxy always closes first. sweep() closes
 *     expired ones so they do not hold sockets either.
 */
import { UpstreamConnection, type ConnectionTimeouts, type UpstreamAddress } from "./connection.ts";

export interface PoolLimits extends ConnectionTimeouts {
  maxIdle: number;
  idleTimeoutMs: number;
}

export class ConnectionPool {
  private readonly idle: UpstreamConnection[] = [];
  private closed = false;

  constructor(
    readonly address: UpstreamAddress,
    private readonly limits: PoolLimits,
  ) {}

  get idleCount(): number {
    return this.idle.length;
  }

  /** An idle connection still inside its idle time, or a new one (connecting). */
  acquire(): UpstreamConnection {
    const now = Date.now();
    for (let connection = this.idle.pop(); connection; connection = this.idle.pop()) {
      if (connection.usable && now - connection.idleSince < this.limits.idleTimeoutMs) return connection;
      connection.destroy();
    }
    return new UpstreamConnection(this.address, this.limits);
  }

  /** A new connection, whatever is idle: for the one resend after a reused connection failed. */
  fresh(): UpstreamConnection {
    return new UpstreamConnection(this.address, this.limits);
  }

  /** Takes a connection back after its exchange; one that may not carry another is closed. */
  release(connection: UpstreamConnection, reusable: boolean): void {
    if (!reusable || this.closed || !connection.usable || this.idle.length >= this.limits.maxIdle) {
      connection.destroy();
      return;
    }
    connection.idleSince = Date.now();
    connection.onIdleClose = this.forget;
    this.idle.push(connection);
  }

  /** Closes idle connections past their idle time. */
  sweep(now = Date.now()): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const connection = this.idle[i]!;
      if (now - connection.idleSince >= this.limits.idleTimeoutMs) {
        this.idle.splice(i, 1);
        connection.destroy();
      }
    }
  }

  /** Closes every idle connection; connections in use are closed when they come back. */
  close(): void {
    this.closed = true;
    for (const connection of this.idle.splice(0)) connection.destroy();
  }

  private readonly forget = (connection: UpstreamConnection): void => {
    const index = this.idle.indexOf(connection);
    if (index !== -1) this.idle.splice(index, 1);
  };
}
