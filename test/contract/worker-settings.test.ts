/**
 * The worker settings table (src/contract/worker-settings.ts) and what is
 * derived from it: `serve`'s flags and parsing, the supervisor's arguments
 * and the config schema's app keys. A test of the table itself, and of the
 * one real trip a setting makes: from the config's pool spec, through the
 * supervisor's command line, into `serve`'s parser.
 */
import { describe, expect, it } from "vitest";
import { parseServeArgs } from "../../src/cli/commands/serve.ts";
import { AppSchema, StackConfigSchema } from "../../src/config/schema.ts";
import { PROXY_UPSTREAM_IDLE_MS, WORKER_KEEP_ALIVE_MS } from "../../src/contract/keep-alive.ts";
import {
  CONFIGURED_SETTINGS,
  parseSetting,
  SETTING_KINDS,
  SettingError,
  WORKER_SETTINGS,
} from "../../src/contract/worker-settings.ts";
import { parseDuration } from "../../src/contract/units.ts";
import { processSpec, type LaunchContext } from "../../src/supervisor/launch.ts";
import { statePaths } from "../../src/supervisor/slots.ts";
import { modulePool } from "../supervisor/helpers.ts";

const appFields = AppSchema.properties as Record<string, { description?: string; default?: unknown } | undefined>;

describe("the worker settings table", () => {
  it("has one row per flag and per key, each with its help", () => {
    const flags = WORKER_SETTINGS.map((setting) => setting.flag);
    const keys = WORKER_SETTINGS.map((setting) => setting.key);
    expect(new Set(flags).size).toBe(flags.length);
    expect(new Set(keys).size).toBe(keys.length);
    for (const setting of WORKER_SETTINGS) {
      expect(setting.flag).toMatch(/^--[a-z][a-z-]*$/);
      expect(setting.help.length).toBeGreaterThan(0);
      expect(SETTING_KINDS[setting.kind]).toBeDefined();
    }
  });

  it.each(WORKER_SETTINGS.map((setting) => [setting.flag, setting] as const))("%s: its default parses with its own parser", (_flag, setting) => {
    expect(() => parseSetting(setting, setting.default)).not.toThrow();
    expect(parseSetting(setting, setting.default)).toBeGreaterThanOrEqual(0);
  });

  it.each(WORKER_SETTINGS.map((setting) => [setting.flag, setting] as const))("%s: a bad value is an error that names the flag", (flag, setting) => {
    expect(() => parseSetting(setting, "x1")).toThrow(SettingError);
    expect(() => parseSetting(setting, "x1")).toThrow(flag);
  });

  it.each(Object.entries(SETTING_KINDS))("%s: what format writes, parse reads back exactly", (_kind, kind) => {
    for (const value of [0, 1, 7, 999, 1000, 30_000, 86_400_000]) expect(kind.parse(kind.format(value), "--x")).toBe(value);
  });

  it.each(CONFIGURED_SETTINGS.map((setting) => [setting.configKey, setting] as const))(
    "%s: is an app key of the config schema, with the row's description and the flag's default",
    (configKey, setting) => {
      const field = appFields[configKey];
      expect(field).toBeDefined();
      expect(field!.description).toBe(setting.description);
      // The config loads its default to the value the flag's default parses to.
      const loaded = setting.kind === "duration" ? parseDuration(field!.default as string) : field!.default;
      expect(loaded).toBe(parseSetting(setting, setting.default));
    },
  );

  it("leaves the keep-alive out of the config: the proxy's idle bound is derived from it, and below it", () => {
    const keepAlive = WORKER_SETTINGS.find((setting) => setting.key === "keepAliveTimeoutMs")!;
    expect("configKey" in keepAlive).toBe(false);
    expect(parseSetting(keepAlive, keepAlive.default)).toBe(WORKER_KEEP_ALIVE_MS);
    expect(PROXY_UPSTREAM_IDLE_MS).toBeLessThan(WORKER_KEEP_ALIVE_MS);
    const upstreamIdle = StackConfigSchema.properties.proxy.properties.limits.properties.upstream_keepalive_timeout as { default?: unknown };
    expect(parseDuration(upstreamIdle.default as string)).toBe(PROXY_UPSTREAM_IDLE_MS);
  });
});

describe("a worker setting's trip: pool spec -> supervisor's command line -> serve's parser", () => {
  const context: LaunchContext = { stackId: "s1", paths: statePaths("/state"), workerBin: "/pkg/dist/cli/bin.js", nodePath: "/usr/bin/node", shell: "/bin/sh" };
  const address = { kind: "unix", path: "/state/sockets/hello.0.sock" } as const;

  async function roundTrip(overrides: Parameters<typeof modulePool>[3]) {
    const pool = modulePool("hello", "app.ts", 2, overrides);
    const spec = processSpec(context, pool, 0, "tsgi:s1:hello:0", address);
    expect(spec.args[0]).toBe(context.workerBin);
    const parsed = await parseServeArgs(spec.args.slice(1));
    return { pool, parsed };
  }

  it.each([
    { maxRequests: 1000, maxRequestsJitter: 50, timeoutMs: 30_000, gracefulTimeoutMs: 5000 },
    { maxRequests: 0, maxRequestsJitter: 0, timeoutMs: 0, gracefulTimeoutMs: 0 },
    { maxRequests: 1, maxRequestsJitter: 7, timeoutMs: 1500, gracefulTimeoutMs: 86_400_000 },
  ])("arrives as it left: %o", async (values) => {
    const { pool, parsed } = await roundTrip(values);
    expect(parsed.spec).toBe("app.ts");
    for (const setting of CONFIGURED_SETTINGS) expect(parsed.options[setting.key], setting.flag).toBe(pool[setting.key]);
    // A setting the supervisor does not pass takes serve's own default.
    expect(parsed.options.keepAliveTimeoutMs).toBe(WORKER_KEEP_ALIVE_MS);
    expect(parsed.options.http).toEqual([address]);
    expect(parsed.options.multiprocess).toBe(true);
  });

  it("serve names the flag of a value it cannot read", async () => {
    await expect(parseServeArgs(["serve", "app.ts", "--timeout", "soon"])).rejects.toThrow('--timeout: "soon" is not a duration');
    await expect(parseServeArgs(["serve", "app.ts", "--max-requests", "-1"])).rejects.toThrow('--max-requests "-1": expected a whole number');
  });
});
