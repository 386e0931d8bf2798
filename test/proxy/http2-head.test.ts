/**
 * The HTTP/1.1 view of an HTTP/2 request head (proxy/http2/head.ts): a pure
 * rule, so plain arrays in and out. The real listener's cases are in
 * test/proxy/http2.test.ts; here, the malformed heads node's own client
 * refuses to send (it checks connection-specific headers before sending).
 */
import { describe, expect, it } from "vitest";
import { http1View } from "../../src/proxy/http2/head.ts";

const base = [":method", "GET", ":path", "/x", ":scheme", "https"];

describe("http1View", () => {
  it("drops the pseudo-headers, puts Host from :authority first, joins split cookies in the first one's place", () => {
    const view = http1View([...base, ":authority", "web.test", "accept", "*/*", "cookie", "a=1", "x-y", "z", "cookie", "b=2"]);
    expect(view).toEqual({ rawHeaders: ["host", "web.test", "accept", "*/*", "cookie", "a=1; b=2", "x-y", "z"], host: "web.test" });
  });

  it("takes Host when there is no :authority; refuses a request with neither", () => {
    expect(http1View([...base, "host", "web.test"])).toEqual({ rawHeaders: ["host", "web.test"], host: "web.test" });
    expect(http1View(base).problem).toBe("an HTTP/2 request without :authority or Host");
  });

  it("accepts a Host equal to :authority (case aside); refuses one naming another entity (RFC 9113 §8.3.1)", () => {
    expect(http1View([...base, ":authority", "Web.test", "host", "web.TEST"]).problem).toBeUndefined();
    expect(http1View([...base, ":authority", "web.test", "host", "admin.test"]).problem).toMatch(/differs from :authority/);
  });

  it("refuses connection-specific headers and a te other than trailers (RFC 9113 §8.2.2)", () => {
    for (const name of ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]) {
      expect(http1View([...base, ":authority", "a", name, "x"]).problem).toMatch(/connection-specific header/);
    }
    expect(http1View([...base, ":authority", "a", "te", "gzip"]).problem).toMatch(/te "gzip"/);
    expect(http1View([...base, ":authority", "a", "te", "trailers"]).problem).toBeUndefined();
  });
});
