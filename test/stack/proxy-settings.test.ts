/**
 * One rule for the path a worker sees, applied to health checks too: a
 * gateway worker is told its mount point and routes on the rest; a command
 * app is told nothing and sees every path as the client sent it, so its
 * health check comes under its first path route as well.
 */
import { describe, expect, it } from "vitest";
import type { AppConfig } from "../../src/config/schema.ts";
import { healthPathFor } from "../../src/stack/proxy-settings.ts";

function app(fields: Record<string, unknown>): AppConfig {
  return { routes: [], health: { path: "/healthz", interval: 5000, timeout: 2000 }, ...fields } as unknown as AppConfig;
}

describe("healthPathFor", () => {
  it.each([
    ["a gateway worker under /api: as written (it strips its mount itself)", { module: "app.ts", routes: [{ path: "/api" }] }, "/healthz"],
    ["a command app under /legacy: under the mount, as its requests arrive", { command: "node s.js", routes: [{ path: "/legacy" }] }, "/legacy/healthz"],
    ["a command app under /legacy/: one slash", { command: "node s.js", routes: [{ path: "/legacy/" }] }, "/legacy/healthz"],
    ["a command app on a host route: as written", { command: "node s.js", routes: [{ host: "legacy.test" }] }, "/healthz"],
    ["a command app on / and /v1: the first path route that is a mount", { command: "node s.js", routes: [{ path: "/" }, { path: "/v1" }] }, "/v1/healthz"],
  ])("%s", (_what, fields, expected) => {
    expect(healthPathFor(app(fields))).toBe(expected);
  });
});
