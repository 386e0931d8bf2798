/**
 * @module admin/events
 *
 * GET /events: the status page's live feed, as server-sent events (the
 * browser's EventSource reconnects by itself). A page that connects gets one
 * `snapshot` (the status and the last minutes of plot points), then an
 * `update` each second (the status and the newest point). The status is made
 * once per second for every open page together, and not at all when none is
 * open.
 *
 * A slow reader is not buffered for: when a page's connection has not taken
 * the last update yet, it is skipped for that one (it gets the next), so an
 * open page on a bad link costs the stack at most one update in memory.
 */
import type http from "node:http";
import type { EventsSnapshot, EventsUpdate, SeriesPoint } from "../stack/status.ts";

/** A comment line this often keeps idle proxies and browsers from closing the stream. */
const KEEPALIVE_MS = 15_000;

export class EventStream {
  private readonly clients = new Set<http.ServerResponse>();
  private readonly keepalive: NodeJS.Timeout;

  constructor(private readonly snapshot: () => EventsSnapshot) {
    this.keepalive = setInterval(() => {
      for (const res of this.clients) res.write(": keepalive\n\n");
    }, KEEPALIVE_MS);
    this.keepalive.unref();
  }

  get open(): number {
    return this.clients.size;
  }

  /** Takes a GET /events: headers, the snapshot, then updates until the client leaves. */
  connect(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (res.destroyed || req.socket.destroyed) return;
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      // Tells nginx in front not to buffer the stream.
      "X-Accel-Buffering": "no",
    });
    res.write(`retry: 2000\nevent: snapshot\ndata: ${JSON.stringify(this.snapshot())}\n\n`);
    this.clients.add(res);
    const leave = () => this.clients.delete(res);
    req.socket.once("close", leave);
    res.once("close", leave);
  }

  /** Sends each open page the newest point with the status of now (made only when a page is open). */
  publish(point: SeriesPoint, status: () => EventsUpdate["status"]): void {
    if (this.clients.size === 0) return;
    const message = `event: update\ndata: ${JSON.stringify({ status: status(), point } satisfies EventsUpdate)}\n\n`;
    for (const res of this.clients) {
      if (res.destroyed) this.clients.delete(res);
      else if (!res.writableNeedDrain) res.write(message);
    }
  }
}
