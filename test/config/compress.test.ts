/**
 * The `compress` key from the file to the proxy: defaults filled in under
 * `compress: {}`, absent means off, the policies the proxy processes get
 * (zstd only where this Node has it), and errors that name the key with
 * file:line:column. The exact messages of a bad block are golden
 * (fixtures/bad/compress.yaml).
 */
import zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.ts";
import type { StackConfig } from "../../src/config/schema.ts";
import { compressPoliciesFor, frontProxyOptions } from "../../src/stack/proxy-settings.ts";
import { planCompression } from "../../src/proxy/compress/plan.ts";

const probe = (path: string) => (path === "/srv/app.ts" ? ("file" as const) : path === "/srv" ? ("dir" as const) : undefined);

function load(text: string) {
  return parseConfig(text, { file: "tsgi.yaml", dir: "/srv", env: {}, probe });
}

function ok(text: string): StackConfig {
  const result = load(text);
  if (!result.ok) expect.fail(result.errors.map((error) => error.format()).join("\n"));
  return result.config;
}

const hasZstd = typeof (zlib as unknown as { createZstdCompress?: unknown }).createZstdCompress === "function";

describe("compress in the config", () => {
  it("absent: no compression, and no `compress` in the proxy's options at all", () => {
    const config = ok("apps:\n  a:\n    module: app.ts\n");
    expect(config.apps.a!.compress).toBeUndefined();
    expect(compressPoliciesFor(config)).toEqual({});
    expect("compress" in frontProxyOptions(config)).toBe(false);
  });

  it("`compress: {}`: on, with every default", () => {
    const config = ok("apps:\n  a:\n    module: app.ts\n    compress: {}\n");
    expect(config.apps.a!.compress).toMatchObject({ min_length: 256, encodings: ["br", "zstd", "gzip"], level: { gzip: 6, br: 4, zstd: 3 } });
    expect(config.apps.a!.compress!.types).toContain("text/*");
    expect(config.apps.a!.compress!.types).toContain("application/json");
    const policy = compressPoliciesFor(config).a!;
    // The same on every Node: the proxy leaves zstd out when it compresses on a Node without it (plan.test below).
    expect(policy.encodings).toEqual(["br", "zstd", "gzip"]);
    expect(frontProxyOptions(config).compress).toEqual({ a: policy });
  });

  it("zstd is offered only where node:zlib has it (Node 22.15+; not Node 20)", () => {
    const config = ok("apps:\n  a:\n    module: app.ts\n    compress: { encodings: [zstd, gzip] }\n");
    const policy = compressPoliciesFor(config).a!;
    const plan = planCompression({ method: "GET", headers: { "accept-encoding": "zstd, gzip" } }, 200, ["Content-Type", "text/plain"], policy);
    expect(plan.encoding).toBe(hasZstd ? "zstd" : "gzip");
  });

  it("a static app may have `compress` (its precompressed siblings, else its files on the fly)", () => {
    const config = parseConfig("apps:\n  site:\n    static: pub\n    compress: {}\n", { file: "tsgi.yaml", dir: "/srv", env: {}, probe: (p) => (p === "/srv/pub" || p === "/srv" ? "dir" : undefined) });
    expect(config.ok).toBe(true);
  });

  it("types are matched lowercase; a repeated coding counts once", () => {
    const config = ok("apps:\n  a:\n    module: app.ts\n    compress: { types: [Text/HTML], encodings: [gzip, gzip] }\n");
    expect(compressPoliciesFor(config).a).toMatchObject({ types: ["text/html"], encodings: ["gzip"] });
  });

  it("a level out of range, an unknown coding, a malformed type: errors naming the key, with file:line:column", () => {
    const result = load("apps:\n  a:\n    module: app.ts\n    compress:\n      level: { gzip: 10 }\n      encodings: [deflate]\n      types: [json]\n");
    expect(result.ok).toBe(false);
    const lines = result.ok ? [] : result.errors.map((error) => error.format());
    expect(lines).toEqual([
      "tsgi.yaml:5:16 apps.a.compress.level.gzip: expected a whole number from 1 to 9, got 10",
      'tsgi.yaml:6:19 apps.a.compress.encodings[0]: expected one of br, zstd, gzip, got "deflate"',
      'tsgi.yaml:7:15 apps.a.compress.types[0]: expected a media type such as text/html, application/json or text/*, got "json"',
    ]);
  });
});
