/**
 * H1 on the real stack: a client sends hop-by-hop headers (those named in
 * Connection, Keep-Alive, TE, Proxy-Authorization, Proxy-Connection, an
 * Upgrade that Connection does not name) and spoofed forwarding headers; the
 * app behind the proxy sees none of them, and X-Forwarded-For is the client's
 * own address (no trusted proxy is configured). Each header is sent alone and
 * all together, each request on its own raw connection, so the bytes are
 * exactly the ones written here.
 */
import net from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { reproduce } from "./bounds.ts";
import { proxyConfig, Stacks, TSGI_TYPES } from "./real-stack.ts";
import { record } from "./record.ts";

const FILE = "test/reliability/headers.test.ts";
const stacks = new Stacks();
afterAll(() => stacks.cleanUp(), 60_000);

/** Answers with the request headers the app was given (the environ's HTTP_* keys), as JSON. */
const APP = `${TSGI_TYPES}
export const app: TsgiApp = (environ, start) => {
  const seen = Object.fromEntries(Object.entries(environ).filter(([key]) => key.startsWith("HTTP_")));
  const body = JSON.stringify(seen);
  start("200 OK", [["Content-Type", "application/json"], ["Content-Length", String(Buffer.byteLength(body))]]);
  return [body];
};
`;

/** What the client adds, and the environ keys that must not carry it to the app. */
const HOSTILE: { header: string; leaks: (seen: Record<string, string>) => string | undefined }[] = [
  { header: "Connection: x-secret\r\nX-Secret: 1", leaks: (seen) => (seen.HTTP_X_SECRET !== undefined ? "X-Secret (named in Connection)" : undefined) },
  { header: "Connection: keep-alive\r\nKeep-Alive: timeout=99", leaks: (seen) => (seen.HTTP_KEEP_ALIVE !== undefined ? "Keep-Alive" : undefined) },
  { header: "TE: trailers", leaks: (seen) => (seen.HTTP_TE !== undefined ? "TE" : undefined) },
  { header: "Proxy-Authorization: Basic c2VjcmV0OnNlY3JldA==", leaks: (seen) => (seen.HTTP_PROXY_AUTHORIZATION !== undefined ? "Proxy-Authorization" : undefined) },
  { header: "Proxy-Connection: keep-alive", leaks: (seen) => (seen.HTTP_PROXY_CONNECTION !== undefined ? "Proxy-Connection" : undefined) },
  { header: "Upgrade: h2c", leaks: (seen) => (seen.HTTP_UPGRADE !== undefined ? "Upgrade without Connection: upgrade" : undefined) },
  { header: "X-Forwarded-For: 6.6.6.6", leaks: (seen) => (seen.HTTP_X_FORWARDED_FOR !== "127.0.0.1" ? `X-Forwarded-For ${seen.HTTP_X_FORWARDED_FOR}` : undefined) },
  { header: "X-Forwarded-Host: evil.example", leaks: (seen) => (String(seen.HTTP_X_FORWARDED_HOST ?? "").includes("evil") ? "X-Forwarded-Host" : undefined) },
  { header: "X-Forwarded-Proto: https", leaks: (seen) => (seen.HTTP_X_FORWARDED_PROTO === "https" ? "X-Forwarded-Proto" : undefined) },
  { header: "Forwarded: for=6.6.6.6;proto=https", leaks: (seen) => (String(seen.HTTP_FORWARDED ?? "").includes("6.6.6.6") ? "Forwarded" : undefined) },
];

/** One request on a new connection; resolves with the status line and body once Content-Length bytes came. */
function rawRequest(port: number, extra: string): Promise<{ status: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let text = "";
    const finish = () => {
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return false;
      const head = text.slice(0, end);
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (text.length < end + 4 + length) return false;
      socket.destroy();
      resolve({ status: head.split("\r\n")[0] ?? "", body: text.slice(end + 4, end + 4 + length) });
      return true;
    };
    socket.setEncoding("latin1");
    socket.on("data", (data) => {
      text += data;
      finish();
    });
    socket.on("error", reject);
    socket.on("close", () => finish() || reject(new Error(`connection closed before a whole answer: ${JSON.stringify(text.slice(0, 200))}`)));
    socket.write(`GET /h1 HTTP/1.1\r\nHost: web.test\r\n${extra}\r\n\r\n`);
    socket.setTimeout(10_000, () => socket.destroy(new Error("no answer in 10 s")));
  });
}

describe("headers a client must not be able to pass to the app", () => {
  it("H1: hop-by-hop and spoofed forwarding headers, alone and together: none reach the app; X-Forwarded-For is the peer", async () => {
    const s = await stacks.start(
      `${proxyConfig()}apps:
  web:
    module: app.ts
    routes: [{ path: / }]
`,
      { "app.ts": APP },
    );
    const port = Number(new URL(s.url).port);
    const cases = [...HOSTILE.map((h) => [h]), HOSTILE];
    const leaked: string[] = [];
    const refused: string[] = [];
    let sent = 0;
    for (const group of cases) {
      const { status, body } = await rawRequest(port, group.map((h) => h.header).join("\r\n"));
      sent++;
      if (!status.startsWith("HTTP/1.1 200")) {
        refused.push(`${group.map((h) => h.header.split(":")[0]).join("+")}: ${status}`);
        continue;
      }
      const seen = JSON.parse(body) as Record<string, string>;
      for (const h of group) {
        const leak = h.leaks(seen);
        if (leak) leaked.push(`${leak} reached the app (sent: ${h.header.replace(/\r\n/g, " | ")})`);
      }
    }
    const figure = `${leaked.length} leaks to the app of ${HOSTILE.length} hostile headers, over ${sent} requests (${refused.length} not answered 200)`;
    record({ id: "H1", done: "hop-by-hop and spoofed X-Forwarded-*/Forwarded headers sent through the real stack", figure, pass: leaked.length === 0 && refused.length === 0 });
    console.log(`H1: ${figure}`);
    expect(leaked, `H1: ${figure}; rerun: ${reproduce(FILE)}`).toEqual([]);
    // A request with these headers is still a good request: the proxy answers it, it does not refuse it.
    expect(refused, figure).toEqual([]);
    await stacks.stop(s);
  }, 60_000);
});
