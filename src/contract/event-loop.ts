/**
 * @module contract/event-loop
 *
 * The one loop of both our arbiters — the supervisor (over pm2) and
 * `serve`'s own pre-fork master (gateway/arbiter.ts) — in the shape of
 * gunicorn's Arbiter: callbacks
 * (pm2's bus, probes, finished pm2 calls, the public methods) only enqueue an
 * event; one drain dispatches each to a synchronous handler, in order, so
 * supervisor state has a single writer and no handler runs inside another
 *. Handlers never await: slow work (a pm2 call, a readiness
 * probe) is started from a handler and reports back by enqueueing its result.
 */
export class EventLoop<E> {
  private readonly queue: E[] = [];
  private scheduled = false;

  constructor(
    private readonly dispatch: (event: E) => void,
    /** Runs after each drain: publish what changed, wake whoever waits. */
    private readonly afterDrain: () => void,
    /** A handler threw: reported, and the loop goes on with the next event. */
    private readonly onError: (error: unknown, event: E) => void,
  ) {}

  enqueue(event: E): void {
    this.queue.push(event);
    if (this.scheduled) return;
    this.scheduled = true;
    // Never drain inside the caller's stack: a callback that enqueues returns at once.
    setImmediate(() => this.drain());
  }

  get pending(): number {
    return this.queue.length;
  }

  private drain(): void {
    this.scheduled = false;
    for (let event = this.queue.shift(); event !== undefined; event = this.queue.shift()) {
      try {
        this.dispatch(event);
      } catch (error) {
        this.onError(error, event);
      }
    }
    this.afterDrain();
  }
}
