/**
 * diffPlans: what a config hot reload does with each kind of change —
 * start, stop, roll, resize, new settings for the proxy, or report that a
 * restart is needed — on configs loaded the real way (parseConfig over YAML
 * text) and planned. Last, the property that makes the diff structural: a
 * key that reaches the plan is diffed without being listed anywhere.
 */
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.ts";
import type { StackConfig } from "../../src/config/schema.ts";
import { appsTo, describeDiff, diffPlans, isEmptyDiff, sameData, type PlanDiff } from "../../src/stack/diff.ts";
import { plan, type StackPlan } from "../../src/stack/plan.ts";

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

const base = plan(load(BASE));
const diffTo = (text: string): PlanDiff => diffPlans(base, plan(load(text)));
const actions = (diff: PlanDiff) => Object.fromEntries(diff.apps.map((change) => [change.app, change.action]));

describe("diffPlans", () => {
  it("the same file: nothing to do", () => {
    const diff = diffTo(BASE);
    expect(isEmptyDiff(diff)).toBe(true);
    expect(actions(diff)).toEqual({ web: "none", api: "none" });
    expect(describeDiff(diff)).toEqual([]);
  });

  it("instances alone is a resize, not a roll", () => {
    const diff = diffTo(BASE.replace("instances: 2", "instances: 4"));
    expect(diff.apps).toEqual([
      { app: "web", action: "resize", instances: { from: 2, to: 4 } },
      { app: "api", action: "none" },
    ]);
    expect(diff.proxy).toEqual({ settings: false });
    expect(describeDiff(diff)).toEqual(["scaled web 2 -> 4"]);
  });

  it("env, module, command, timeouts roll the app onto new workers", () => {
    expect(appsTo(diffTo(BASE.replace("instances: 2,", "instances: 2, env: { A: 1 },")), "roll")).toEqual(["web"]);
    expect(appsTo(diffTo(BASE.replace("web.ts", "web2.ts")), "roll")).toEqual(["web"]);
    expect(appsTo(diffTo(BASE.replace("node api.js", "node api2.js")), "roll")).toEqual(["api"]);
    expect(appsTo(diffTo(BASE.replace("instances: 2,", "instances: 2, timeout: 5s,")), "roll")).toEqual(["web"]);
  });

  it("a roll that also changes instances is one roll (the new size comes with it)", () => {
    const diff = diffTo(BASE.replace("instances: 2,", "instances: 3, env: { A: 1 },"));
    expect(actions(diff)).toEqual({ web: "roll", api: "none" });
    expect(describeDiff(diff)).toEqual(["reloading web onto new workers"]);
  });

  it("routes, balance, health and retry are the proxy's alone", () => {
    for (const change of ["routes: [{ path: /www }]", "routes: [{ path: /web }], balance: least_conn", "routes: [{ path: /web }], health: { path: /h }", "routes: [{ path: /web }], retry: { tries: 1 }"]) {
      const diff = diffTo(BASE.replace("routes: [{ path: /web }]", change));
      expect(diff.proxy, change).toEqual({ settings: true });
      expect(actions(diff), change).toEqual({ web: "none", api: "none" });
      expect(describeDiff(diff), change).toEqual(["proxy routing and settings updated"]);
    }
  });

  it("apps added and removed; an app that changes kind is replaced", () => {
    const diff = diffTo(`${BASE.replace(/ {2}api:.*\n/, "")}  docs: { static: ., routes: [{ path: /docs }] }\n`);
    expect(actions(diff)).toEqual({ web: "none", docs: "start", api: "stop" });
    expect(diff.proxy.settings).toBe(true);
    expect(describeDiff(diff)).toEqual(["added docs", "removed api", "proxy routing and settings updated"]);
    const replaced = diffTo(BASE.replace('command: "node api.js"', "static: ."));
    expect(actions(replaced)).toEqual({ web: "none", api: "replace" });
    expect(describeDiff(replaced)[0]).toBe("replaced api (a different kind of app)");
  });

  it("listen addresses and state_dir need a restart; the rest still applies", () => {
    const diff = diffTo(BASE.replace('listen: ["127.0.0.1:8080"]', 'listen: ["127.0.0.1:9090"], limits: { client_max_body_size: 5m }'));
    expect(diff.needsRestart).toEqual(["proxy.listen"]);
    expect(diff.proxy.settings).toBe(true);
    expect(diffTo(`state_dir: /var/tsgi\n${BASE}`).needsRestart).toEqual(["state_dir"]);
    expect(diffTo(BASE.replace("proxy: {", 'proxy: { admin: "127.0.0.1:9091",')).needsRestart).toEqual(["proxy.admin"]);
  });

  it("watch globs are the watcher's", () => {
    const diff = diffTo(BASE.replace("instances: 2,", 'instances: 2, watch: ["src/**"],'));
    expect(diff.watch).toEqual(["web"]);
    expect(actions(diff)).toEqual({ web: "none", api: "none" });
    expect(diff.proxy.settings).toBe(false);
  });

  it("proxy.workers starts or retires proxy processes", () => {
    const diff = diffTo(BASE.replace("proxy: {", "proxy: { workers: auto,"));
    expect(diff.proxy).toEqual({ settings: false, processes: { from: 1, to: "auto" } });
    expect(describeDiff(diff)).toEqual(["proxy processes 1 -> auto"]);
  });
});

describe("diffPlans is structural: a key that reaches the plan is diffed", () => {
  /** The base plan with one change made to a copy. */
  const changed = (edit: (next: StackPlan) => void): PlanDiff => {
    const next = structuredClone(base);
    edit(next);
    return diffPlans(base, next);
  };

  it("a new worker setting in a pool spec rolls its pool", () => {
    const diff = changed((next) => Object.assign(next.pools.web!, { someNewWorkerSetting: 5 }));
    expect(actions(diff)).toEqual({ web: "roll", api: "none" });
  });

  it("a new proxy setting reaches the proxy processes", () => {
    const diff = changed((next) => Object.assign(next.proxy.settings.proxy, { someNewProxySetting: true }));
    expect(diff.proxy.settings).toBe(true);
    expect(actions(diff)).toEqual({ web: "none", api: "none" });
  });

  it("every fixed part needs a restart, named by its config key", () => {
    expect(changed((next) => (next.fixed.tlsListen = [{ host: "127.0.0.1", port: 8443 }])).needsRestart).toEqual(["proxy.tls"]);
    expect(changed((next) => (next.fixed.control = "/elsewhere/control.sock")).needsRestart).toEqual(["state_dir"]);
    // HTTP/2 is offered or not when the TLS listeners are made: turning it off needs a restart, said once with proxy.tls added.
    expect(changed((next) => (next.fixed.tlsHttp2 = false)).needsRestart).toEqual(["proxy.tls.http2"]);
    expect(changed((next) => Object.assign(next.fixed, { tlsListen: [{ host: "127.0.0.1", port: 8443 }], tlsHttp2: true })).needsRestart).toEqual(["proxy.tls"]);
  });

  it("sameData: key order and undefined keys do not count; array order does", () => {
    expect(sameData({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1, d: undefined })).toBe(true);
    expect(sameData({ c: [1, 2] }, { c: [2, 1] })).toBe(false);
    expect(sameData({ a: 1 }, { a: "1" })).toBe(false);
  });
});
