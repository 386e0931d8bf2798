/**
 * Static apps in the config (`apps.NAME.static: FOLDER`): the loader's
 * promises that the golden file (fixtures/bad/static-apps.yaml) cannot show
 * — a static app loads with nothing but its folder and routes, the defaults
 * the loader fills in (instances, cwd, timeout…) are not taken for keys the
 * user wrote, and a key is refused only when it is written. The exact
 * messages are the golden test's business.
 */
import { describe, expect, it } from "vitest";
import { type LoadResult, parseConfig } from "../../src/config/load.ts";
import type { Probe } from "../../src/config/paths.ts";
import { frontProxyOptions } from "../../src/stack/proxy-settings.ts";

/** /srv/app.ts and /srv/public/index.html exist; so do their folders. */
const probe: Probe = (path) =>
  path === "/srv/app.ts" || path === "/srv/public/index.html" ? "file" : path === "/srv" || path === "/srv/public" ? "dir" : undefined;

const parse = (text: string): LoadResult => parseConfig(text, { file: "tsgi.yaml", dir: "/srv", env: {}, probe });

function errors(text: string): string[] {
  const result = parse(text);
  if (result.ok) expect.fail("expected errors");
  return result.errors.map((error) => error.format());
}

describe("static apps", () => {
  it("load with a folder and routes alone, beside a module app", () => {
    const result = parse("apps:\n  site:\n    static: public\n    routes: [{ path: /static/ }, { host: Files.Example.com }]\n  web:\n    module: app.ts\n");
    if (!result.ok) expect.fail(result.errors.map((error) => error.format()).join("\n"));
    expect(result.config.apps.site!.static).toMatch(/public$/);
    expect(result.config.apps.site!.routes).toEqual([{ path: "/static" }, { host: "files.example.com", path: "/" }]);
    expect(result.config.apps.web!.static).toBeUndefined();
  });

  it("refuse a worker key only where the file writes it, naming it", () => {
    expect(errors("apps:\n  site:\n    static: public\n    instances: 2\n")).toEqual([
      "tsgi.yaml:4:5 apps.site.instances: `instances` applies to `module` and `command` apps: a `static` app has no workers",
    ]);
  });

  it("need an existing folder, named with its key and path", () => {
    expect(errors("apps:\n  site:\n    static: nowhere\n  file:\n    static: app.ts\n")).toEqual([
      "tsgi.yaml:3:5 apps.site.static: no such folder: /srv/nowhere",
      "tsgi.yaml:5:5 apps.file.static: a file, not a folder: /srv/app.ts",
    ]);
  });

  it("are one kind: static beside module or command is refused at the second key", () => {
    expect(errors("apps:\n  both:\n    command: node server.js\n    static: public\n")).toEqual([
      expect.stringMatching(/^tsgi\.yaml:4:5 apps\.both\.static: an app has one of `module`, `command`, `static` or `redirect`, not `command` and `static` /),
    ]);
  });

  it("hand index, fallback and cache to the proxy in its units; a folder without them adds no option", () => {
    const plain = parse("apps:\n  site:\n    static: public\n");
    if (!plain.ok) expect.fail("plain static app refused");
    expect(frontProxyOptions(plain.config).staticSites).toBeUndefined();
    const spa = parse(
      "apps:\n  site:\n    static: public\n    index: [index.html]\n    fallback: /index.html\n    cache: { max_age: 1h, immutable: [assets/**] }\n",
    );
    if (!spa.ok) expect.fail(spa.errors.map((error) => error.format()).join("\n"));
    expect(frontProxyOptions(spa.config).staticSites).toEqual({
      site: { index: ["index.html"], fallback: "/index.html", cache: { maxAgeSeconds: 3600, immutable: ["assets/**"], noCache: ["*.html"] } },
    });
  });
});
