/**
 * Compression's pure parts: Accept-Encoding negotiation on the examples of
 * RFC 9110 §12.5.3 and the q-value rules around them, which responses are
 * compressible at all, and the headers of a compressed response (Vary merged,
 * ETag weakened, Content-Length dropped).
 */
import { describe, expect, it } from "vitest";
import { compressible, type CompressPolicy, negotiate, parseAcceptEncoding, typeMatches } from "../../src/proxy/compress/negotiate.ts";
import { encodedHeaders, headerLookup, withVary } from "../../src/proxy/compress/headers.ts";
import { planCompression } from "../../src/proxy/compress/plan.ts";

const ALL = ["br", "zstd", "gzip"] as const;

describe("negotiate: RFC 9110 §12.5.3's examples", () => {
  it("`compress, gzip`: gzip (compress is not offered)", () => {
    expect(negotiate("compress, gzip", ALL)).toBe("gzip");
  });
  it("an empty field value: identity only", () => {
    expect(negotiate("", ALL)).toBeUndefined();
  });
  it("`*`: any coding, so the server's first choice", () => {
    expect(negotiate("*", ALL)).toBe("br");
    expect(negotiate("*", ["gzip"])).toBe("gzip");
  });
  it("`compress;q=0.5, gzip;q=1.0`: gzip", () => {
    expect(negotiate("compress;q=0.5, gzip;q=1.0", ALL)).toBe("gzip");
  });
  it("`gzip;q=1.0, identity; q=0.5, *;q=0`: gzip, and nothing else", () => {
    expect(negotiate("gzip;q=1.0, identity; q=0.5, *;q=0", ALL)).toBe("gzip");
    expect(negotiate("gzip;q=1.0, identity; q=0.5, *;q=0", ["br"])).toBeUndefined();
  });
});

describe("negotiate: q-values, wildcard and ties", () => {
  it("no Accept-Encoding header: no compression", () => {
    expect(negotiate(undefined, ALL)).toBeUndefined();
  });
  it("the highest q wins over the server's preference", () => {
    expect(negotiate("br;q=0.5, gzip;q=0.8", ALL)).toBe("gzip");
    expect(negotiate("gzip, br;q=0.9", ALL)).toBe("gzip");
  });
  it("ties go to br, then zstd, then gzip (a browser's `gzip, deflate, br, zstd`)", () => {
    expect(negotiate("gzip, deflate, br, zstd", ALL)).toBe("br");
    expect(negotiate("gzip, zstd", ALL)).toBe("zstd");
    expect(negotiate("gzip, deflate, br, zstd", ["zstd", "gzip"])).toBe("zstd");
  });
  it("q=0 refuses a coding, even one `*` would allow", () => {
    expect(negotiate("br;q=0, *", ALL)).toBe("zstd");
    expect(negotiate("gzip;q=0", ALL)).toBeUndefined();
    expect(negotiate("*;q=0", ALL)).toBeUndefined();
  });
  it("`*` covers only the codings not named", () => {
    expect(negotiate("gzip;q=0.9, *;q=0.1", ALL)).toBe("gzip");
    expect(negotiate("gzip;q=0.1, *;q=0.5", ALL)).toBe("br");
  });
  it("identity;q=0 with nothing acceptable is still answered (identity): no 406", () => {
    expect(negotiate("identity;q=0", ALL)).toBeUndefined();
    expect(negotiate("identity;q=0, gzip", ALL)).toBe("gzip");
  });
  it("names are case-insensitive, x-gzip is gzip, whitespace and parameters are allowed", () => {
    expect(negotiate("GZIP", ALL)).toBe("gzip");
    expect(negotiate("x-gzip", ALL)).toBe("gzip");
    expect(negotiate(" br ; q=0.7 , gzip ; q=0.6", ALL)).toBe("br");
  });
  it("a malformed q counts as 0, a malformed member is skipped", () => {
    expect(parseAcceptEncoding("gzip;q=2, br;q=abc, zstd;q=0.5, ,").get("gzip")).toBe(0);
    expect(negotiate("gzip;q=2, br;q=abc, zstd;q=0.5, ,", ALL)).toBe("zstd");
    expect(negotiate("gzip;q=1.000, br;q=0.999", ALL)).toBe("gzip");
  });
  it("repeated Accept-Encoding headers count together", () => {
    expect(negotiate(["gzip;q=0.5", "br"], ALL)).toBe("br");
  });
  it("only the codings offered (zstd left out on Node 20)", () => {
    expect(negotiate("zstd", ["br", "gzip"])).toBeUndefined();
  });
});

const POLICY: CompressPolicy = {
  types: ["text/*", "application/json", "image/svg+xml"],
  minLength: 256,
  encodings: ["br", "gzip"],
  levels: { gzip: 6, br: 4, zstd: 3 },
};

function facts(status: number, headers: Record<string, string>, method = "GET") {
  const flat = Object.entries(headers).flat();
  return { method, status, header: headerLookup(flat) };
}

describe("compressible: what is never compressed", () => {
  it("a JSON or text/* body of known length above min_length, or of unknown length", () => {
    expect(compressible(facts(200, { "Content-Type": "application/json", "Content-Length": "5000" }), POLICY)).toBe(true);
    expect(compressible(facts(200, { "Content-Type": "text/html; charset=utf-8" }), POLICY)).toBe(true);
    expect(compressible(facts(404, { "content-type": "text/plain" }), POLICY)).toBe(true);
  });
  it("types: text/* matches any text/, parameters and case ignored; others not", () => {
    expect(typeMatches("Text/CSS; charset=UTF-8", POLICY.types)).toBe(true);
    expect(typeMatches("image/png", POLICY.types)).toBe(false);
    expect(typeMatches("application/json-seq", POLICY.types)).toBe(false);
    expect(typeMatches(undefined, POLICY.types)).toBe(false);
    expect(typeMatches("nonsense", POLICY.types)).toBe(false);
  });
  it.each([
    ["HEAD", 200, {}],
    ["GET", 204, {}],
    ["GET", 304, {}],
    ["GET", 206, { "Content-Range": "bytes 0-9/100" }],
    ["GET", 200, { "Content-Range": "bytes 0-9/100" }],
    ["GET", 200, { "Content-Encoding": "gzip" }],
    ["GET", 200, { "Content-Encoding": "identity" }],
    ["GET", 200, { "Cache-Control": "public, no-transform" }],
    ["GET", 200, { "Cache-Control": "No-Transform" }],
    ["GET", 200, { "Content-Length": "255" }],
    ["GET", 101, {}],
  ] as const)("%s %d %j: not compressed", (method, status, extra) => {
    expect(compressible(facts(status, { "Content-Type": "text/plain", ...extra }, method), POLICY)).toBe(false);
  });
});

describe("the headers of a compressed response", () => {
  it("Content-Length dropped, Content-Encoding set, strong ETag weakened, weak kept", () => {
    const out = encodedHeaders(["Content-Type", "text/plain", "Content-Length", "900", "ETag", '"abc"'], "gzip");
    expect(out).toEqual(["Content-Type", "text/plain", "ETag", 'W/"abc"', "Content-Encoding", "gzip", "Vary", "Accept-Encoding"]);
    expect(encodedHeaders(["ETag", 'W/"abc"'], "br")).toContain('W/"abc"');
  });
  it("Vary: merged into the worker's (one header, its members kept), not repeated, `*` left alone", () => {
    expect(withVary(["Vary", "Origin", "X", "1", "vary", "Cookie"])).toEqual(["Vary", "Origin, Cookie, Accept-Encoding", "X", "1"]);
    expect(withVary(["Vary", "accept-encoding"])).toEqual(["Vary", "accept-encoding"]);
    expect(withVary(["Vary", "*"])).toEqual(["Vary", "*"]);
  });
  it("planCompression: compressed for a client that accepts it, Vary alone for one that does not, untouched when not compressible", () => {
    const head = ["Content-Type", "application/json", "Content-Length", "5000"];
    const req = (ae?: string) => ({ method: "GET", headers: ae === undefined ? {} : { "accept-encoding": ae } });
    expect(planCompression(req("gzip, br"), 200, head, POLICY)).toEqual({
      headers: ["Content-Type", "application/json", "Content-Encoding", "br", "Vary", "Accept-Encoding"],
      encoding: "br",
    });
    expect(planCompression(req(), 200, head, POLICY)).toEqual({ headers: [...head, "Vary", "Accept-Encoding"] });
    expect(planCompression(req("gzip"), 206, head, POLICY)).toEqual({ headers: head });
    expect(planCompression(req("gzip"), 200, head, undefined)).toEqual({ headers: head });
  });
});
