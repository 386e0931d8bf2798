/**
 * @module test/admin/fake-admin
 *
 * A stand-in for the admin listener's API, for the page's browser tests
 * until the real one lands: the page's three files (from page-assets.ts, as
 * the real server serves them), GET /events (server-sent events, driven by
 * the test: `send`), GET /status, and the write actions, recorded, refused
 * from another site by the real server's own rule (admin/auth.ts), and answered as the
 * test says (`answer`, which may hold the answer back to see the page wait).
 */
import http from "node:http";
import { AdminAuth } from "../../src/admin/auth.ts";
import type { AddressInfo } from "node:net";
import { pageAsset } from "../../src/admin/page-assets.ts";
import type { EventsSnapshot, EventsUpdate, StackStatus } from "../../src/stack/status.ts";

export interface RecordedPost {
  /** Path and query as sent, e.g. `/scale?app=web&n=%2B1`. */
  url: string;
  action: string;
  params: Record<string, string>;
  headers: http.IncomingHttpHeaders;
}

export interface FakeAnswer {
  status: number;
  body: unknown;
}

export interface FakeAdmin {
  /** `http://127.0.0.1:PORT/` */
  url: string;
  posts: RecordedPost[];
  /** What GET /status answers and the next snapshot carries. */
  status: StackStatus;
  /** The series of the next snapshot. */
  series: EventsSnapshot["series"];
  /** Decides each accepted POST's answer; by default 200 `{ ok: true }`. */
  answer: (post: RecordedPost) => FakeAnswer | Promise<FakeAnswer>;
  /** Sends an `update` to every open feed (and makes its status the one GET /status answers). */
  update(update: EventsUpdate): void;
  /** Feeds open now. */
  feeds(): number;
  /** down: every open feed is cut and new ones get 503 (the page's EventSource gives up); up: feeds are served again. */
  setFeed(state: "up" | "down"): void;
  close(): Promise<void>;
}

const ACTIONS = new Set(["reload", "restart", "scale"]);

/** What the page must work under (the real admin server may send it too). */
export const PAGE_CSP = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export async function startFakeAdmin(status: StackStatus, series: EventsSnapshot["series"]): Promise<FakeAdmin> {
  const feeds = new Set<http.ServerResponse>();
  let feedDown = false;

  const fake: FakeAdmin = {
    url: "",
    posts: [],
    status,
    series,
    answer: () => ({ status: 200, body: { ok: true } }),
    update(update) {
      fake.status = update.status;
      for (const res of feeds) res.write(`event: update\ndata: ${JSON.stringify(update)}\n\n`);
    },
    feeds: () => feeds.size,
    setFeed(state) {
      feedDown = state === "down";
      if (feedDown) for (const res of feeds) res.socket?.destroy();
    },
    close: () =>
      new Promise((resolve) => {
        for (const res of feeds) res.socket?.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };

  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
    res.end(text);
  };

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url!, "http://admin");
    const action = url.pathname.slice(1);
    if (req.method === "GET") {
      const asset = pageAsset(url.pathname);
      if (asset) {
        // The strictest policy the page is meant to run under: nothing but its own origin, no inline code or style.
        res.writeHead(200, { "Content-Type": asset.contentType, "Content-Length": asset.body.length, "Content-Security-Policy": PAGE_CSP });
        res.end(asset.body);
      } else if (url.pathname === "/status") {
        json(res, 200, fake.status);
      } else if (url.pathname === "/events") {
        if (feedDown) return json(res, 503, { error: "feed down (test)", code: "TEST_FEED_DOWN" });
        res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-store" });
        // A short retry so that a cut feed comes back within the test's patience.
        const snapshot: EventsSnapshot = { status: fake.status, series: fake.series };
        res.write(`retry: 300\n\nevent: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`);
        feeds.add(res);
        res.on("close", () => feeds.delete(res));
      } else {
        json(res, 404, { error: "not found", code: "NOT_FOUND" });
      }
      return;
    }
    if (req.method === "POST" && ACTIONS.has(action)) {
      req.resume();
      const verdict = new AdminAuth(undefined).check(req, true);
      if (!verdict.ok) return json(res, verdict.status, { error: verdict.reason });
      const post: RecordedPost = { url: req.url!, action, params: Object.fromEntries(url.searchParams), headers: req.headers };
      fake.posts.push(post);
      const answer = await fake.answer(post);
      json(res, answer.status, answer.body);
      return;
    }
    json(res, 405, { error: "method not allowed", code: "METHOD_NOT_ALLOWED" });
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return fake;
}
