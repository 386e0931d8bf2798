/**
 * @module gateway/uwsgi/input
 *
 * The request body of a uwsgi connection: what follows the packet, up to
 * CONTENT_LENGTH bytes, as the app's `tsgi.input`, and what becomes of the
 * part the app did not read.
 *
 * - `BodyInput` is the async iterable the app reads. The connection pushes
 *   what it reads; past BODY_HIGH_WATER_MARK unread bytes the socket is paused
 *   until the app catches up (back-pressure all the way to nginx). Bytes past
 *   CONTENT_LENGTH are not the body (one request per connection) and are
 *   dropped. A connection that ends before CONTENT_LENGTH bytes makes the
 *   reader's next read throw IncompleteUwsgiBody.
 * - `lingerAndClose` is the lingering close after the response: the unread
 *   rest of the body is read and dropped before the socket closes, because
 *   closing a socket with unread bytes sends a TCP reset, which can make nginx
 *   lose a response it has not read yet (a 502 for a request that was served).
 */
import type net from "node:net";
import type { InputStream } from "../../tsgi/types.ts";
import { IncompleteUwsgiBody } from "./errors.ts";

/** Request body bytes buffered for an app that reads slower than the peer sends, before the socket is paused. */
export const BODY_HIGH_WATER_MARK = 64 * 1024;

/**
 * The lingering close is bounded like nginx's own (lingering_timeout 5 s,
 * lingering_time 30 s): a peer that stops sending the body it announced, or
 * never stops, cannot hold the connection open.
 */
export const LINGER_IDLE_MS = 5_000;
export const LINGER_MAX_MS = 30_000;

interface Waiter {
  resolve(result: IteratorResult<Uint8Array>): void;
  reject(error: unknown): void;
}

/**
 * The request body as an async iterable (see the module header). Iterating
 * again continues where the last iteration stopped; at the end of the body it
 * ends at once.
 */
export class BodyInput implements InputStream {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private received = 0;
  private waiters: Waiter[] = [];
  private failure: unknown;
  private discarding = false;
  private pausedHere = false;

  constructor(
    private readonly socket: net.Socket,
    readonly length: number,
  ) {}

  get complete(): boolean {
    return this.received >= this.length;
  }

  /** Takes bytes read from the connection. */
  push(chunk: Buffer): void {
    const wanted = this.length - this.received;
    if (wanted <= 0 || chunk.length === 0) return;
    const part = chunk.length > wanted ? chunk.subarray(0, wanted) : chunk;
    this.received += part.length;
    if (this.discarding) return;
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve({ value: part, done: false });
    else this.enqueue(part);
  }

  /** The connection ended: an unfinished body becomes an error for the reader. */
  connectionEnded(): void {
    if (this.complete || this.failure !== undefined) return;
    this.failure = new IncompleteUwsgiBody(this.received, this.length);
    for (const waiter of this.waiters) waiter.reject(this.failure);
    this.waiters = [];
  }

  /** The response is over: drop what is buffered, end any pending read, and read the rest of the body to nowhere. */
  discard(): void {
    this.discarding = true;
    this.queue.length = 0;
    this.queued = 0;
    this.resumeIfPaused();
    for (const waiter of this.waiters) waiter.resolve({ value: undefined, done: true });
    this.waiters = [];
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => this.next(),
      return: () => Promise.resolve({ value: undefined, done: true }),
    };
  }

  private enqueue(part: Buffer): void {
    this.queue.push(part);
    this.queued += part.length;
    if (this.queued < BODY_HIGH_WATER_MARK || this.pausedHere) return;
    this.pausedHere = true;
    this.socket.pause();
  }

  private resumeIfPaused(): void {
    if (!this.pausedHere) return;
    this.pausedHere = false;
    this.socket.resume();
  }

  private next(): Promise<IteratorResult<Uint8Array>> {
    const chunk = this.queue.shift();
    if (chunk) {
      this.queued -= chunk.length;
      if (this.queued < BODY_HIGH_WATER_MARK) this.resumeIfPaused();
      return Promise.resolve({ value: chunk, done: false });
    }
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.complete || this.discarding) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
}

/**
 * After the response: end our side, read the unread body to nowhere (through
 * `input`, or straight off the socket when the request never got one), and
 * close when the peer does. The time limits start once the response is
 * flushed: a slow reader still gets all of it (while flushing, the request
 * counts as in flight, where the worker's --timeout sees it).
 */
export function lingerAndClose(socket: net.Socket, input: BodyInput | undefined): void {
  if (socket.destroyed) return;
  if (input) input.discard();
  else socket.resume();
  if (!socket.writableEnded) socket.end();
  if (socket.writableFinished) boundLinger(socket);
  else socket.once("finish", () => boundLinger(socket));
}

/** Destroys the socket after LINGER_IDLE_MS without data, or LINGER_MAX_MS in all. */
function boundLinger(socket: net.Socket): void {
  socket.setTimeout(LINGER_IDLE_MS, () => socket.destroy());
  const deadline = setTimeout(() => socket.destroy(), LINGER_MAX_MS);
  socket.once("close", () => clearTimeout(deadline));
}
