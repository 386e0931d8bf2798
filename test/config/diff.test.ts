/**
 * diffConfig: what a config hot reload does with each kind of change —
 * start, stop, roll, scale, swap in the proxy, or report that a restart is
 * needed — on configs loaded the real way (parseConfig over YAML text).
 */
import { describe, expect, it } from "vitest";
import { describeDiff, diffConfig, isEmptyDiff } from "../../src/config/diff.ts";
import { parseConfig } from "../../src/config/load.ts";
import type { StackConfig } from "../../src/config/schema.ts";

const probe = (file: string) => (file.endsWith(".ts") || file.endsWith(".js") ? "file" : file.startsWith("/srv") ? "dir" : undefined);

function load(text: string): StackConfig {
  const result = parseConfig(text, { file: "tsgi.yaml", dir: "/srv", env: {}, probe: probe as never });
  if (!result.ok) throw new Error(result.errors.map((error) => error.format()).join("\n"));
  return result.config;
}

const BASE = `
proxy: { listen: ["127.0.0.1:8080"] }
apps:
  web: { module: web.ts, instances: 2, routes: [{ path: /web }] }
  api: { command: "node api.js", routes: [{ path: /api }] }
`;

describe("diffConfig", () => {
  const base = load(BASE);

  it("the same file: nothing to do", () => {
    const diff = diffConfig(base, load(BASE));
    expect(isEmptyDiff(diff)).toBe(true);
    expect(describeDiff(diff)).toEqual([]);
  });

  it("instances alone is a scale, not a roll", () => {
    const diff = diffConfig(base, load(BASE.replace("instances: 2", "instances: 4")));
    expect(diff).toMatchObject({ scaled: [{ app: "web", from: 2, to: 4 }], rolled: [], proxyChanged: false });
    expect(describeDiff(diff)).toEqual(["scaled web 2 -> 4"]);
  });

  it("env, module, command, timeouts roll the app onto new workers", () => {
    expect(diffConfig(base, load(BASE.replace("instances: 2,", "instances: 2, env: { A: 1 },"))).rolled).toEqual(["web"]);
    expect(diffConfig(base, load(BASE.replace("web.ts", "web2.ts"))).rolled).toEqual(["web"]);
    expect(diffConfig(base, load(BASE.replace("node api.js", "node api2.js"))).rolled).toEqual(["api"]);
    expect(diffConfig(base, load(BASE.replace("instances: 2,", "instances: 2, timeout: 5s,"))).rolled).toEqual(["web"]);
  });

  it("a roll that also changes instances is one roll (the new size comes with it)", () => {
    const diff = diffConfig(base, load(BASE.replace("instances: 2,", "instances: 3, env: { A: 1 },")));
    expect(diff.rolled).toEqual(["web"]);
    expect(diff.scaled).toEqual([]);
  });

  it("routes, balance, health and retry are the proxy's alone", () => {
    for (const change of ["routes: [{ path: /www }]", "routes: [{ path: /web }], balance: least_conn", "routes: [{ path: /web }], health: { path: /h }", "routes: [{ path: /web }], retry: { tries: 1 }"]) {
      const diff = diffConfig(base, load(BASE.replace("routes: [{ path: /web }]", change)));
      expect(diff, change).toMatchObject({ proxyChanged: true, rolled: [], scaled: [], added: [], removed: [] });
    }
  });

  it("apps added and removed; an app that changes kind is replaced", () => {
    const next = load(`${BASE.replace(/ {2}api:.*\n/, "")}  docs: { static: ., routes: [{ path: /docs }] }\n`);
    const diff = diffConfig(base, next);
    expect(diff).toMatchObject({ added: ["docs"], removed: ["api"], proxyChanged: true });
    expect(describeDiff(diff)).toEqual(["added docs", "removed api", "proxy routing and settings updated"]);
    const replaced = diffConfig(base, load(BASE.replace('command: "node api.js"', "static: .")));
    expect(describeDiff(replaced)[0]).toBe("replaced api (a different kind of app)");
  });

  it("listen addresses and state_dir need a restart; the rest still applies", () => {
    const diff = diffConfig(base, load(BASE.replace('listen: ["127.0.0.1:8080"]', 'listen: ["127.0.0.1:9090"], limits: { client_max_body_size: 5m }')));
    expect(diff.needsRestart).toEqual(["proxy.listen"]);
    expect(diff.proxyChanged).toBe(true);
    expect(diffConfig(base, load(`state_dir: /var/tsgi\n${BASE}`)).needsRestart).toEqual(["state_dir"]);
  });

  it("watch globs are the watcher's", () => {
    const diff = diffConfig(base, load(BASE.replace("instances: 2,", 'instances: 2, watch: ["src/**"],')));
    expect(diff).toMatchObject({ watchChanged: ["web"], rolled: [], proxyChanged: false });
  });
});
