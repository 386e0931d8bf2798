/**
 * The pure rules behind the proxy's redirects (proxy/redirects.ts), the
 * passes a configuration gets (proxy/passes.ts passesFor), and the
 * options a config gives the proxy (stack/proxy-settings.ts answerOptions).
 * The same rules on real sockets: redirects.test.ts.
 */
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.ts";
import { answerHeadersWithApp, joinVary } from "../../src/proxy/app-headers.ts";
import { passesFor, UPGRADE_PASSES, WEB_PASSES } from "../../src/proxy/passes.ts";
import { compileRedirect, foldLeadingSlashes, httpsLocation, redirectLocation, trailingSlashPath } from "../../src/proxy/redirects.ts";
import { answerOptions, frontProxyOptions } from "../../src/stack/proxy-settings.ts";

const redirect = (to: string, keepPath = true, keepQuery = true) => compileRedirect({ to, status: 301, keepPath, keepQuery });

describe("an app's headers on the proxy's own answers", () => {
  it("joins Vary members once each, whatever their case; * stays *", () => {
    expect(joinVary(undefined, "Accept-Encoding")).toBe("Accept-Encoding");
    expect(joinVary("Origin", "Accept-Encoding")).toBe("Origin, Accept-Encoding");
    expect(joinVary("origin, accept-encoding", "Accept-Encoding")).toBe("origin, accept-encoding");
    expect(joinVary("*", "Accept")).toBe("*");
  });

  it("replaces a header of the same name in any case, joins Vary, keeps the proxy's Content-Type", () => {
    const head = { "Content-Type": "text/plain; charset=utf-8", "Content-Length": 5, Vary: "Accept", "X-Request-Id": "r1" };
    expect(answerHeadersWithApp(head, { vary: "Origin", "content-type": "application/json", "x-frame-options": "DENY" })).toEqual({
      "Content-Type": "text/plain; charset=utf-8",
      "Content-Length": 5,
      Vary: "Accept, Origin",
      "X-Request-Id": "r1",
      "x-frame-options": "DENY",
    });
    expect(answerHeadersWithApp(head, undefined)).toEqual(head);
  });
});

describe("redirectLocation", () => {
  it("joins `to`, the path below the mount and the queries without doubling a slash", () => {
    expect(redirectLocation(redirect("https://a.test/new/"), "/old", "/old/x", "")).toBe("https://a.test/new/x");
    expect(redirectLocation(redirect("https://a.test/new"), "/old", "/old/x", "q=1")).toBe("https://a.test/new/x?q=1");
    expect(redirectLocation(redirect("https://a.test?from=old"), "", "/x", "q=1")).toBe("https://a.test/x?from=old&q=1");
    expect(redirectLocation(redirect("https://a.test", false, false), "", "/x", "q=1")).toBe("https://a.test");
    expect(redirectLocation(redirect("/", true), "/go", "/go//evil.com", "")).toBe("/evil.com");
    // node hands over the target as latin1, a char a byte: anything outside printable ASCII goes out %-encoded.
    expect(redirectLocation(redirect("https://a.test"), "", "/caf\xe9 x", "")).toBe("https://a.test/caf%E9%20x");
  });

  it("folds leading slashes and backslashes of a same-host path only", () => {
    expect(["//x", "/\\x", "\\\\x", "///x", "/x//y"].map(foldLeadingSlashes)).toEqual(["/x", "/x", "/x", "/x", "/x//y"]);
  });
});

describe("trailingSlashPath", () => {
  it("adds a slash except to a file name, removes one except from /", () => {
    expect(["/a", "/a/", "/a/b.css", "/a.b/c"].map((path) => trailingSlashPath("add", path))).toEqual(["/a/", undefined, undefined, "/a.b/c/"]);
    expect(["/a", "/a/", "/a//", "/"].map((path) => trailingSlashPath("remove", path))).toEqual([undefined, "/a", "/a", undefined]);
  });
});

describe("httpsLocation", () => {
  it("replaces the Host's port, leaves 443 out, keeps IPv6 brackets", () => {
    expect(httpsLocation("a.test:80", 443, "/x?y")).toBe("https://a.test/x?y");
    expect(httpsLocation("[::1]:8080", 8443, "/")).toBe("https://[::1]:8443/");
  });
});

describe("passesFor", () => {
  it("is the base lists when nothing asks for a redirect, with each pass in place otherwise", () => {
    expect(passesFor({ httpsRedirect: false, proxyAnswers: false })).toEqual({ web: WEB_PASSES, upgrade: UPGRADE_PASSES });
    const both = passesFor({ httpsRedirect: true, proxyAnswers: true });
    expect(both.web.map((pass) => pass.name).slice(0, 6)).toEqual(["head rules", "https redirect", "route", "method", "proxy answers", "client limits"]);
    expect(both.upgrade.map((pass) => pass.name)).toEqual(["head rules", "https redirect", "route", "proxy answers", "no upgrade to a folder", "client limits", "select"]);
  });
});

function config(yaml: string) {
  const result = parseConfig(yaml, { file: "tsgi.yaml", dir: "/srv", env: {}, probe: (p) => (p === "/srv" ? "dir" : p.startsWith("/srv/c") ? "file" : undefined) });
  if (!result.ok) expect.fail(result.errors.map((error) => error.format()).join("\n"));
  return result.config;
}

describe("answerOptions", () => {
  it("adds no option for a config without these keys", () => {
    const options = frontProxyOptions(config("apps:\n  a:\n    command: x\n    routes: [{ path: / }]\n"));
    expect(Object.keys(options).filter((key) => ["redirects", "trailingSlash", "headers", "httpsRedirect"].includes(key))).toEqual([]);
  });

  it("takes the Location's port from the first TLS listener, and the except prefixes without their slash", () => {
    const yaml = "proxy:\n  tls: { cert: c.pem, key: c.key, listen: [\"0.0.0.0:9443\"] }\n  https_redirect: {}\napps:\n  a:\n    redirect: { to: /b }\n    routes: [{ path: /a }]\n";
    expect(answerOptions(config(yaml))).toEqual({
      redirects: { a: { to: "/b", status: 301, keepPath: true, keepQuery: true } },
      httpsRedirect: { status: 308, port: 9443, except: ["/.well-known/acme-challenge"] },
    });
  });
});
