/**
 * The front proxy's router, as a table: which app (and which mount point) a
 * Host header and a path reach. An exact host beats a `*.` wildcard, which
 * beats a route with no host; among those, the longest path prefix wins, and
 * prefixes match only at a "/" boundary. Host comparison ignores case, the
 * port and a trailing dot. No sockets: the Router is a pure table.
 */
import { describe, expect, it } from "vitest";
import { Router, normalizeHost, type RouteMatch, type RouteSpec } from "../../src/proxy/router.ts";

/** One routing table with every kind of route, in an order that is NOT most-specific-first. */
const ROUTES: RouteSpec[] = [
  { app: "any-root" },
  { app: "any-api", path: "/api" },
  { app: "any-api-v2", path: "/api/v2" },
  { app: "wild", host: "*.example.com" },
  { app: "wild-docs", host: "*.example.com", path: "/docs" },
  { app: "exact", host: "www.example.com" },
  { app: "exact-api", host: "www.example.com", path: "/api/" },
  { app: "apex", host: "Example.COM" },
];

const router = new Router(ROUTES);

type Case = [what: string, host: string | undefined, path: string, expected: RouteMatch | undefined];

const CASES: Case[] = [
  // Exact host beats wildcard beats any.
  ["exact host, no path route", "www.example.com", "/", { app: "exact", mount: "" }],
  ["exact host, its path route", "www.example.com", "/api/users", { app: "exact-api", mount: "/api" }],
  ["exact host beats a longer any-host prefix", "www.example.com", "/api/v2/x", { app: "exact-api", mount: "/api" }],
  ["wildcard host", "shop.example.com", "/cart", { app: "wild", mount: "" }],
  ["wildcard host with its path route", "shop.example.com", "/docs/intro", { app: "wild-docs", mount: "/docs" }],
  ["wildcard matches deeper names", "a.b.example.com", "/", { app: "wild", mount: "" }],
  ["wildcard does not match the bare domain (the apex route does)", "example.com", "/docs", { app: "apex", mount: "" }],
  ["a suffix that is not a subdomain is not the wildcard", "badexample.com", "/", { app: "any-root", mount: "" }],
  ["unknown host falls to the any-host routes", "other.test", "/", { app: "any-root", mount: "" }],
  ["no Host header at all: any-host routes", undefined, "/api", { app: "any-api", mount: "/api" }],
  // Host normalization: case, port, trailing dot.
  ["host case is ignored", "WWW.Example.Com", "/", { app: "exact", mount: "" }],
  ["the port is ignored", "www.example.com:8080", "/", { app: "exact", mount: "" }],
  ["a trailing dot is ignored", "www.example.com.", "/", { app: "exact", mount: "" }],
  ["all three at once", "WWW.EXAMPLE.COM.:443", "/api", { app: "exact-api", mount: "/api" }],
  ["wildcard with case, port and dot", "Shop.Example.Com.:8443", "/", { app: "wild", mount: "" }],
  ["route host written in capitals still matches", "example.com", "/", { app: "apex", mount: "" }],
  // Longest prefix at segment boundaries.
  ["prefix itself", "other.test", "/api", { app: "any-api", mount: "/api" }],
  ["prefix with a trailing slash", "other.test", "/api/", { app: "any-api", mount: "/api" }],
  ["below the prefix", "other.test", "/api/users", { app: "any-api", mount: "/api" }],
  ["longer prefix wins", "other.test", "/api/v2", { app: "any-api-v2", mount: "/api/v2" }],
  ["below the longer prefix", "other.test", "/api/v2/items/1", { app: "any-api-v2", mount: "/api/v2" }],
  ["/apix is not under /api", "other.test", "/apix", { app: "any-root", mount: "" }],
  ["/api/v20 is not under /api/v2", "other.test", "/api/v20", { app: "any-api", mount: "/api" }],
  ["path matching is case-sensitive", "other.test", "/API", { app: "any-root", mount: "" }],
];

describe("Router.match", () => {
  it.each(CASES)("%s: %s %s", (_what, host, path, expected) => {
    expect(router.match(host, path)).toEqual(expected);
  });

  it("the order routes are declared in does not matter", () => {
    const reversed = new Router([...ROUTES].reverse());
    for (const [, host, path, expected] of CASES) expect(reversed.match(host, path)).toEqual(expected);
  });

  it("a host route with no path matches every path, and its mount is empty", () => {
    const hostOnly = new Router([{ app: "site", host: "site.test" }]);
    for (const path of ["/", "/a", "/a/b/c", "/api/v2", "/x.html"]) expect(hostOnly.match("site.test", path)).toEqual({ app: "site", mount: "" });
  });

  it("no matching route: undefined", () => {
    const table = new Router([
      { app: "site", host: "site.test" },
      { app: "api", path: "/api" },
      { app: "wild", host: "*.wild.test" },
    ]);
    expect(table.match("other.test", "/")).toBeUndefined();
    expect(table.match("other.test", "/apix")).toBeUndefined();
    expect(table.match("wild.test", "/")).toBeUndefined();
    expect(table.match(undefined, "/")).toBeUndefined();
    expect(new Router([]).match("site.test", "/")).toBeUndefined();
  });
});

describe("normalizeHost", () => {
  it.each([
    ["Example.COM:8080", "example.com"],
    ["example.com.", "example.com"],
    ["EXAMPLE.com.:80", "example.com"],
    ["[::1]:8080", "[::1]"],
    ["127.0.0.1:3000", "127.0.0.1"],
    ["", ""],
    [undefined, ""],
  ])("%s -> %s", (input, expected) => {
    expect(normalizeHost(input)).toBe(expected);
  });
});
