/**
 * The access log's two formats, byte for byte: nginx's "combined" with the
 * stack's fields appended, and JSON lines.
 */
import { describe, expect, it } from "vitest";
import { formatCombined, formatJson, timeLocal } from "../../src/proxy/access-log.ts";
import type { AccessEntry } from "../../src/proxy/server.ts";

const entry: AccessEntry = {
  remoteAddr: "127.0.0.1",
  method: "GET",
  url: "/hello/x?y=1",
  httpVersion: "1.1",
  status: 200,
  bytes: 23,
  referer: undefined,
  userAgent: 'curl/8.5 "quoted"',
  app: "hello",
  endpoint: "hello.0",
  ms: 3.2,
  requestId: "4f0c1d9e-1b2a-4c3d-9e8f-0a1b2c3d4e5f",
};

describe("access log", () => {
  it("renders nginx's $time_local", () => {
    const at = new Date(2026, 10, 22, 1, 53, 26);
    expect(timeLocal(at)).toMatch(/^22\/Nov\/2026:01:53:26 [+-]\d{4}$/);
  });

  it("combined: nginx's fields, then app, worker, time and request id", () => {
    const at = new Date(2026, 10, 22, 1, 53, 26);
    expect(formatCombined(entry, at)).toBe(
      `127.0.0.1 - - [${timeLocal(at)}] "GET /hello/x?y=1 HTTP/1.1" 200 23 "-" "curl/8.5 \\"quoted\\"" ` +
        "app=hello worker=hello.0 rt=0.003 rid=4f0c1d9e-1b2a-4c3d-9e8f-0a1b2c3d4e5f",
    );
  });

  it("an answer the proxy made itself ends with its catalog code (err=), in both formats", () => {
    const at = new Date(2026, 10, 22, 1, 53, 26);
    const refused: AccessEntry = { ...entry, status: 503, endpoint: undefined, error: "TSGI_ERR_PROXY_NO_READY_WORKER" };
    expect(formatCombined(refused, at)).toMatch(/ app=hello worker=- rt=0\.003 rid=\S+ err=TSGI_ERR_PROXY_NO_READY_WORKER$/);
    expect(JSON.parse(formatJson(refused, at)).error).toBe("TSGI_ERR_PROXY_NO_READY_WORKER");
    expect(formatCombined(entry, at)).not.toContain("err=");
  });

  it("json: one object per line with the time first", () => {
    const at = new Date(Date.UTC(2026, 10, 22, 1, 53, 26));
    const line = formatJson(entry, at);
    expect(line).not.toContain("\n");
    expect(JSON.parse(line)).toEqual({ time: "2026-11-22T01:53:26.000Z", ...entry, referer: undefined });
  });
});
