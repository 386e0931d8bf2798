/**
 * The rules both front doors apply to a request head (http/request-rules.ts),
 * row by row from RFC 9110/9112 and what nginx answers. The same requests on
 * real sockets, against the proxy and `serve`, are in front-door.test.ts.
 */
import { describe, expect, it } from "vitest";
import { headProblem, isValidHost, normalizeTarget, removeDotSegments, type RequestHeadView } from "../../src/http/request-rules.ts";

function head(fields: Partial<RequestHeadView> & { headers?: [string, string][] } = {}): RequestHeadView {
  const { headers = [["Host", "app.test"]], ...rest } = fields;
  return { method: "GET", url: "/", httpVersionMajor: 1, httpVersionMinor: 1, rawHeaders: headers.flat(), ...rest };
}

describe("headProblem", () => {
  it("lets an ordinary request through", () => {
    expect(headProblem(head())).toBeUndefined();
    expect(headProblem(head({ method: "OPTIONS", url: "*" }))).toBeUndefined();
    expect(headProblem(head({ url: "http://app.test:8080/a?b=1" }))).toBeUndefined();
    expect(headProblem(head({ httpVersionMinor: 0, headers: [] }))).toBeUndefined();
  });

  it.each([
    ["HTTP/2.0 in a request line", head({ httpVersionMajor: 2, httpVersionMinor: 0 }), 505],
    ["HTTP/3.0", head({ httpVersionMajor: 3, httpVersionMinor: 0 }), 505],
    ["HTTP/0.9", head({ httpVersionMajor: 0, httpVersionMinor: 9 }), 400],
    ["a 9 KiB target", head({ url: `/${"a".repeat(9 * 1024)}` }), 414],
    ["a 9 KiB header line", head({ headers: [["Host", "app.test"], ["X-Big", "b".repeat(9 * 1024)]] }), 431],
    ["1001 header fields", head({ headers: Array.from({ length: 1001 }, (_, i): [string, string] => [`X-${i}`, "1"]) }), 431],
    ["Content-Length 010", head({ headers: [["Content-Length", "010"]] }), 400],
    ["Transfer-Encoding: ,chunked", head({ headers: [["Transfer-Encoding", ",chunked"]] }), 400],
    ["Transfer-Encoding in HTTP/1.0", head({ httpVersionMinor: 0, headers: [["Transfer-Encoding", "chunked"]] }), 400],
    ["two Host lines", head({ headers: [["Host", "a.test"], ["Host", "b.test"]] }), 400],
    ["an empty Host", head({ headers: [["Host", ""]] }), 400],
    ["an HTTP/1.1 request without Host", head({ headers: [] }), 400],
    ["an absolute-form HTTP/1.1 request without Host", head({ url: "http://a.test/x", headers: [] }), 400],
    ["two Authorization lines", head({ headers: [["Host", "a"], ["Authorization", "Basic x"], ["authorization", "Basic y"]] }), 400],
    ["two If-None-Match lines", head({ headers: [["Host", "a"], ["If-None-Match", '"a"'], ["If-None-Match", '"b"']] }), 400],
    ["two Expect lines", head({ headers: [["Host", "a"], ["Expect", "100-continue"], ["Expect", "100-continue"]] }), 400],
    ["two Content-Range lines", head({ method: "PUT", headers: [["Host", "a"], ["Content-Range", "bytes 0-1/2"], ["Content-Range", "bytes 0-1/2"]] }), 400],
    ["* with GET", head({ url: "*" }), 400],
    ["an absolute-form target that is not http(s)", head({ url: "ftp://app.test/x" }), 400],
    ["an absolute-form target with no host", head({ url: "http:///x" }), 400],
    ["an absolute-form target with userinfo", head({ url: "http://user@app.test/x" }), 400],
    ["a target that is neither a path nor a URL", head({ url: "x/y" }), 400],
    ["a % not followed by two hex digits", head({ url: "/a%2" }), 400],
    ["a % followed by non-hex", head({ url: "/a%zz/b" }), 400],
    ["TRACE", head({ method: "TRACE" }), 405],
  ] as [string, RequestHeadView, number][])("%s: %i", (_what, request, status) => {
    expect(headProblem(request)?.status).toBe(status);
  });

  it("lets TRACE through when the app opts in, and says what is allowed when it does not", () => {
    expect(headProblem(head({ method: "TRACE" }), { allowTrace: true })).toBeUndefined();
    expect(headProblem(head({ method: "TRACE" }))?.allow).toMatch(/GET/);
  });

  it("allows a % in the query, and repeats of list headers that are not singletons", () => {
    expect(headProblem(head({ url: "/a?q=100%" }))).toBeUndefined();
    expect(headProblem(head({ headers: [["Host", "a"], ["Accept", "a/b"], ["Accept", "c/d"], ["Cookie", "a=1"], ["Cookie", "b=2"]] }))).toBeUndefined();
  });
});

describe("isValidHost", () => {
  it.each(["app.test", "app.test:8080", "127.0.0.1", "127.0.0.1:80", "[::1]", "[::1]:8080", "[2001:db8::5]", "localhost.", "host:", "a_b.test", "xn--bcher-kva.example"])(
    "accepts %s",
    (host) => expect(isValidHost(host)).toBe(true),
  );
  it.each([".", "..", "..x", "a..b", "a/\\:1", "a/b", "a\\b", "1.2.3.4:9000:80", ":98777", "host:65536", "host:80a", "[::1", "[::1]x", "[1:2:3]", "[::g]", "[1::2::3]", "user@host", ""])(
    "refuses %j",
    (host) => expect(isValidHost(host)).toBe(false),
  );
});

describe("normalizeTarget", () => {
  it.each([
    ["/a/b?x=1", { url: "/a/b?x=1", path: "/a/b" }],
    ["/a/./b/../c", { url: "/a/c", path: "/a/c" }],
    ["/a/../../etc/passwd", { url: "/etc/passwd", path: "/etc/passwd" }],
    ["/a/%2e%2e/b", { url: "/b", path: "/b" }],
    ["/a/b/..", { url: "/a/", path: "/a/" }],
    ["/a/..?q=/../x", { url: "/?q=/../x", path: "/" }],
    ["http://App.test:8080/x/../y?z", { url: "/y?z", path: "/y", host: "App.test:8080" }],
    ["http://app.test", { url: "/", path: "/", host: "app.test" }],
    ["https://app.test?x=1", { url: "/?x=1", path: "/", host: "app.test" }],
    // RFC 3986 §6.2.2.2: unreserved characters decoded, any other escape kept as sent (the query untouched).
    ["/%61pi/log%69n?q=%61", { url: "/api/login?q=%61", path: "/api/login" }],
    ["/a%2Db%5Fc%2ed%7E", { url: "/a-b_c.d~", path: "/a-b_c.d~" }],
    ["/a%2Fb/%20c/%25/%3F", { url: "/a%2Fb/%20c/%25/%3F", path: "/a%2Fb/%20c/%25/%3F" }],
    ["/x/%2E%2E/y", { url: "/y", path: "/y" }],
  ])("%s", (target, expected) => {
    expect(normalizeTarget(target)).toEqual(expected);
  });

  it("leaves a path without dot segments as it is (the same string)", () => {
    const path = "/plain/path";
    expect(removeDotSegments(path)).toBe(path);
  });
});
