/**
 * The loader's promises, each checked directly (issue #3): defaults applied,
 * units and paths normalized, the result deep-frozen, every error at once,
 * positions right, the file read from anywhere, and config.example.yaml valid
 * as it is. The exact messages are the golden tests' business (golden.test.ts).
 */
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ConfigError, formatPath } from "../../src/config/errors.ts";
import { DEFAULT_CONFIG_FILE, type LoadResult, configStateDir, loadConfig, parseConfig } from "../../src/config/load.ts";
import type { Probe } from "../../src/config/paths.ts";
import type { StackConfig } from "../../src/config/schema.ts";

const ROOT = nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), "../..");

/** A probe over an imaginary file system: these files exist under /srv, and the folders that hold them. */
function fakeProbe(files: string[]): Probe {
  const dirs = new Set(files.flatMap((file) => file.split("/").slice(1, -1).map((_, i, parts) => `/${parts.slice(0, i + 1).join("/")}`)));
  return (path) => (files.includes(path) ? "file" : dirs.has(path) ? "dir" : undefined);
}

const probe = fakeProbe(["/srv/app.ts", "/srv/api/index.ts", "/srv/web/server.js"]);

function parse(text: string, env: Record<string, string> = {}): LoadResult {
  return parseConfig(text, { file: "tsgi.yaml", dir: "/srv", env, probe });
}

function ok(text: string, env: Record<string, string> = {}): StackConfig {
  const result = parse(text, env);
  if (!result.ok) expect.fail(result.errors.map((error) => error.format()).join("\n"));
  return result.config;
}

function errors(text: string, env: Record<string, string> = {}): string[] {
  const result = parse(text, env);
  if (result.ok) expect.fail("expected errors");
  return result.errors.map((error) => error.format());
}

describe("defaults", () => {
  const config = ok("apps:\n  hello:\n    module: app.ts\n");

  it("fills the proxy, with nginx's body limit", () => {
    expect(config.proxy).toEqual({
      listen: [{ host: "127.0.0.1", port: 8080 }],
      admin: { host: "127.0.0.1", port: 8081 },
      limits: {
        client_max_body_size: 1024 * 1024,
        header_timeout: 60_000,
        body_timeout: 60_000,
        connect_timeout: 60_000,
        upstream_timeout: 60_000,
        upstream_keepalive: 64,
        upstream_keepalive_timeout: 4_000,
        websocket_idle_timeout: 60_000,
      },
      workers: 1,
      trusted_proxies: [],
      access_log: "combined",
    });
  });

  it("fills every app field, in normalized units", () => {
    expect(config.apps.hello).toEqual({
      module: "/srv/app.ts",
      interface: "auto",
      instances: 1,
      routes: [],
      balance: "round_robin",
      allow_trace: false,
      headers: {},
      trailing_slash: "keep",
      retry: { tries: 3, non_idempotent: false },
      watch: [],
      env: {},
      cwd: "/srv",
      max_requests: 0,
      max_requests_jitter: 0,
      timeout: 30_000,
      graceful_timeout: 30_000,
      ready_timeout: 10_000,
      restart: { max_restarts: 10, backoff: 100, min_uptime: 1000 },
    });
  });

  it("keeps state in .tsgi beside the file", () => {
    expect(config.state_dir).toBe("/srv/.tsgi");
    expect(configStateDir(config)).toBe("/srv/.tsgi");
  });

  it("fills health's interval and timeout only when there is a health check", () => {
    const withHealth = ok("apps:\n  a:\n    module: app.ts\n    health: { path: /healthz }\n");
    expect(withHealth.apps.a!.health).toEqual({ path: "/healthz", interval: 5000, timeout: 2000 });
    expect(config.apps.hello!.health).toBeUndefined();
  });

  it("takes an empty mapping or list key (all its lines commented out) as its default", () => {
    const config = ok("proxy:\n  # listen: [\":80\"]\n  limits:\napps:\n  a:\n    module: app.ts\n    routes:\n    env:\n");
    expect(config.proxy.listen).toEqual([{ host: "127.0.0.1", port: 8080 }]);
    expect(config.proxy.limits.header_timeout).toBe(60_000);
    expect([config.apps.a!.routes, config.apps.a!.env]).toEqual([[], {}]);
    expect(errors("apps:\n  a:\n    module: app.ts\n    timeout:\n")).toEqual([
      "tsgi.yaml:4:5 apps.a.timeout: expected a duration such as 30s, 500ms, 2m or 1m30s, got nothing",
    ]);
  });

  it("never overwrites a value of the wrong type with a default (it is reported instead)", () => {
    expect(errors("apps:\n  a:\n    module: app.ts\n    routes: { path: /x }\n    env: [A]\n")).toEqual([
      expect.stringContaining("tsgi.yaml:4:5 apps.a.routes: expected a list"),
      expect.stringContaining("tsgi.yaml:5:5 apps.a.env: expected a mapping"),
    ]);
  });
});

describe("normalization", () => {
  it("reads durations and sizes as humans write them", () => {
    const config = ok(
      "proxy: { limits: { client_max_body_size: 256M, header_timeout: 1.5m, upstream_timeout: 90 } }\n" +
        "apps:\n  a:\n    module: app.ts\n    max_memory: 512k\n    timeout: 250ms\n    graceful_timeout: 1h\n",
    );
    expect(config.proxy.limits).toMatchObject({ client_max_body_size: 256 * 1024 ** 2, header_timeout: 90_000, upstream_timeout: 90_000 });
    expect([config.apps.a!.max_memory, config.apps.a!.timeout, config.apps.a!.graceful_timeout]).toEqual([512 * 1024, 250, 3_600_000]);
  });

  it("resolves paths from the config file's folder, and finds a module's file as the gateway does", () => {
    const config = ok("state_dir: /var/lib/stack\napps:\n  a:\n    module: api:handler\n    cwd: web\n    watch: [api/**, '!api/*.test.ts']\n");
    expect(config.state_dir).toBe("/var/lib/stack");
    expect(config.apps.a).toMatchObject({ module: "/srv/api/index.ts:handler", cwd: "/srv/web", watch: ["/srv/api/**", "!/srv/api/*.test.ts"] });
  });

  it("splits addresses, with :PORT on loopback and IPv6 in brackets", () => {
    const config = ok('proxy: { listen: [":80", "[::1]:81", "0.0.0.0:0"], admin: "localhost:9000" }\napps: { a: { module: app.ts } }\n');
    expect(config.proxy.listen).toEqual([
      { host: "127.0.0.1", port: 80 },
      { host: "::1", port: 81 },
      { host: "0.0.0.0", port: 0 },
    ]);
    expect(config.proxy.admin).toEqual({ host: "localhost", port: 9000 });
  });

  it("normalizes routes: host lowercased, path without trailing slash, / when absent", () => {
    const config = ok("apps:\n  a:\n    module: app.ts\n    routes: [{ host: API.Example.com }, { path: /v1/ }, { path: / }]\n");
    expect(config.apps.a!.routes).toEqual([{ host: "api.example.com", path: "/" }, { path: "/v1" }, { path: "/" }]);
  });

  it("turns env numbers and booleans into strings", () => {
    expect(ok("apps:\n  a:\n    module: app.ts\n    env: { N: 4, B: true, S: x }\n").apps.a!.env).toEqual({ N: "4", B: "true", S: "x" });
  });

  it("takes YAML anchors and merge keys, so that apps can share settings", () => {
    const config = ok("apps:\n  a: &base\n    module: app.ts\n    timeout: 10s\n  b:\n    <<: *base\n    instances: 2\n");
    expect(config.apps.b).toMatchObject({ module: "/srv/app.ts", timeout: 10_000, instances: 2 });
  });

  it("loads two files that mean the same thing to equal configs (reloads compare them)", () => {
    const a = ok("apps:\n  a:\n    module: app.ts\n    timeout: 30s\n");
    const b = ok("apps:\n  a:\n    timeout: 30\n    module: ./app.ts\n    instances: 1\n");
    expect(a).toEqual(b);
  });
});

describe("the loaded config is deep-frozen", () => {
  const config = ok("apps:\n  a:\n    module: app.ts\n    routes: [{ path: /a }]\n    env: { A: x }\n");

  it("at every depth", () => {
    const frozen = [config, config.proxy, config.proxy.listen, config.proxy.listen[0], config.apps, config.apps.a, config.apps.a!.routes, config.apps.a!.routes[0], config.apps.a!.env, config.apps.a!.restart];
    for (const value of frozen) expect(Object.isFrozen(value)).toBe(true);
  });

  it("so a write throws (ESM is strict mode)", () => {
    expect(() => {
      (config.apps.a as { instances: number }).instances = 5;
    }).toThrow(TypeError);
    expect(() => (config.apps.a!.routes as unknown as unknown[]).push({})).toThrow(TypeError);
  });
});

describe("environment variables", () => {
  it("expand in every value, typed when unquoted", () => {
    const config = ok('apps:\n  a:\n    module: ${FILE}\n    instances: ${N:-2}\n    env: { Q: "${N:-2}" }\n', { FILE: "app.ts" });
    expect(config.apps.a).toMatchObject({ module: "/srv/app.ts", instances: 2, env: { Q: "2" } });
  });

  it("an unset one without a default is an error at its line, and every one is reported", () => {
    expect(errors("apps:\n  a:\n    module: ${FILE}\n    env: { A: '${A}', B: '${B:-b}' }\n  b:\n    command: ${CMD}\n")).toEqual([
      expect.stringMatching(/^tsgi\.yaml:3:5 apps\.a\.module: \$\{FILE\} is not set/),
      expect.stringMatching(/^tsgi\.yaml:4:12 apps\.a\.env\.A: \$\{A\} is not set/),
      expect.stringMatching(/^tsgi\.yaml:6:5 apps\.b\.command: \$\{CMD\} is not set/),
    ]);
  });

  it("come from process.env by default", () => {
    process.env.TSGI_TEST_INSTANCES = "3";
    try {
      const result = parseConfig("apps:\n  a:\n    module: app.ts\n    instances: ${TSGI_TEST_INSTANCES}\n", { file: "f", dir: "/srv", probe });
      expect(result.ok && result.config.apps.a!.instances).toBe(3);
    } finally {
      delete process.env.TSGI_TEST_INSTANCES;
    }
  });
});

describe("proxy.trusted_proxies", () => {
  it("takes addresses and CIDR blocks, IPv4 and IPv6", () => {
    const config = ok('proxy: { trusted_proxies: ["10.0.0.0/8", "192.168.1.7", "::1", "2001:db8::/32"] }\napps: { a: { module: app.ts } }\n');
    expect(config.proxy.trusted_proxies).toEqual(["10.0.0.0/8", "192.168.1.7", "::1", "2001:db8::/32"]);
  });

  it("names an entry that is not one, with its position", () => {
    expect(errors('proxy: { trusted_proxies: ["10.0.0.0/33", "::/129", "1.2.3"] }\napps: { a: { module: app.ts } }\n')).toEqual([
      'tsgi.yaml:1:28 proxy.trusted_proxies[0]: "10.0.0.0/33" is not an IP address or CIDR block (such as 10.0.0.0/8 or ::1)',
      'tsgi.yaml:1:43 proxy.trusted_proxies[1]: "::/129" is not an IP address or CIDR block (such as 10.0.0.0/8 or ::1)',
      'tsgi.yaml:1:53 proxy.trusted_proxies[2]: "1.2.3" is not an IP address or CIDR block (such as 10.0.0.0/8 or ::1)',
    ]);
  });
});

describe("errors", () => {
  it("are all reported at once, in file order", () => {
    const lines = errors("apps:\n  a:\n    module: nope.ts\n    instancs: 2\n  b:\n    instances: 0\n    command: x\n");
    expect(lines).toEqual([
      "tsgi.yaml:3:5 apps.a.module: no such file: /srv/nope.ts",
      "tsgi.yaml:4:5 apps.a.instancs: unknown key (did you mean `instances`?)",
      "tsgi.yaml:6:5 apps.b.instances: expected a whole number from 1 to 256, got 0",
    ]);
  });

  it("carry file, line, column, path and message as data", () => {
    const result = parse("apps:\n  hello:\n    module: app.ts\n    instances: two\n");
    expect(result.ok).toBe(false);
    const [error] = result.ok ? [] : result.errors;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ file: "tsgi.yaml", line: 4, column: 5, path: "apps.hello.instances", message: 'expected a whole number from 1 to 256, got "two"' });
    expect(error).toMatchObject({ code: "TSGI_ERR_CONFIG_SCHEMA", at: "tsgi.yaml:4:5" });
    expect(error!.format()).toBe('tsgi.yaml:4:5 apps.hello.instances: expected a whole number from 1 to 256, got "two"');
  });

  it("format paths with list indexes and odd keys", () => {
    expect(formatPath(["apps", "hello", "routes", 0, "path"])).toBe("apps.hello.routes[0].path");
    expect(formatPath(["apps", "a", "env", "A.B"])).toBe('apps.a.env["A.B"]');
    expect(formatPath([])).toBe("");
    expect(new ConfigError("f.yaml", 0, 0, "", "no such file: /x").format()).toBe("f.yaml: no such file: /x");
  });

  it("point into anchors and aliases where they are written", () => {
    expect(errors("x: &t 10x\napps:\n  a:\n    module: app.ts\n    timeout: *t\n")).toEqual([
      "tsgi.yaml:1:1 x: unknown key (expected one of: state_dir, proxy, logs, apps)",
      'tsgi.yaml:5:5 apps.a.timeout: expected a duration such as 30s, 500ms, 2m or 1m30s, got "10x"',
    ]);
  });

  it("are a result, never an exception, whatever the text", () => {
    for (const text of ["", "~", "[", "apps: 3", "apps: [1, 2]", "- - -", "apps: { a: null }", "apps: { a: { routes: [null] } }", "\u0000"]) {
      expect(() => parse(text)).not.toThrow();
      expect(parse(text).ok).toBe(false);
    }
  });
});

describe("loadConfig: the file", () => {
  it("reads a file given relative to the current directory, and resolves paths from its own folder", () => {
    const dir = mkdtempSync(nodePath.join(tmpdir(), "tsgi-config-"));
    mkdirSync(nodePath.join(dir, "app"));
    writeFileSync(nodePath.join(dir, "app", "main.ts"), "export const app = () => [];\n");
    writeFileSync(nodePath.join(dir, DEFAULT_CONFIG_FILE), "apps:\n  a:\n    module: app/main.ts\n");
    const result = loadConfig(nodePath.relative(process.cwd(), nodePath.join(dir, DEFAULT_CONFIG_FILE)), {});
    expect(result.ok && result.config.apps.a!.module).toBe(nodePath.join(dir, "app", "main.ts"));
    expect(result.ok && result.config.state_dir).toBe(nodePath.join(dir, ".tsgi"));
  });

  it("a missing file is one clear error", () => {
    const result = loadConfig("no/such/tsgi.yaml", {});
    expect(result.ok ? [] : result.errors.map((error) => error.format())).toEqual([`no/such/tsgi.yaml: no such file: ${nodePath.resolve("no/such/tsgi.yaml")}`]);
  });

  it("a folder is not a config file", () => {
    const result = loadConfig(tmpdir(), {});
    expect(result.ok ? "" : result.errors[0]!.message).toMatch(/^a folder, not a config file/);
  });
});

describe("rate_limit and conn_limit", () => {
  it("load nginx's rate syntax as requests per second, with the defaults filled in", () => {
    const config = ok("apps:\n  a:\n    module: app.ts\n    rate_limit: { rate: 10r/s, burst: 20, nodelay: true }\n    conn_limit: { max: 10 }\n  b:\n    module: app.ts\n    rate_limit: { rate: 30r/m }\n");
    expect(config.apps.a!.rate_limit).toEqual({ rate: 10, burst: 20, nodelay: true, delay: 0, status: 429, max_clients: 10_000 });
    expect(config.apps.a!.conn_limit).toEqual({ max: 10, status: 429, max_clients: 10_000 });
    expect(config.apps.b!.rate_limit!.rate).toBe(0.5);
    expect(config.apps.b!.conn_limit).toBeUndefined();
  });

  it("name the key, file and line of a bad value", () => {
    expect(errors("apps:\n  a:\n    module: app.ts\n    rate_limit: { rate: 10, burst: -1, status: 200 }\n")).toEqual([
      "tsgi.yaml:4:19 apps.a.rate_limit.rate: expected a rate such as 10r/s or 30r/m, got 10",
      "tsgi.yaml:4:29 apps.a.rate_limit.burst: expected a whole number from 0 to 1000000, got -1",
      "tsgi.yaml:4:40 apps.a.rate_limit.status: expected a whole number from 400 to 599, got 200",
    ]);
  });
});

describe("config.example.yaml", () => {
  it("validates as it is, with the four apps the example runs", () => {
    const result = loadConfig(nodePath.join(ROOT, "config.example.yaml"), {});
    if (!result.ok) expect.fail(result.errors.map((error) => error.format()).join("\n"));
    const { apps, proxy } = result.config;
    expect(Object.keys(apps)).toEqual(["hello", "express", "legacy", "site"]);
    expect(apps.hello).toMatchObject({ module: nodePath.join(ROOT, "examples/hello/app.ts"), instances: 2, interface: "tsgi", balance: "least_conn" });
    expect(apps.express).toMatchObject({ module: nodePath.join(ROOT, "examples/express/app.ts") });
    expect(apps.legacy).toMatchObject({ command: "node server.js", cwd: nodePath.join(ROOT, "examples/legacy") });
    expect(apps.site).toMatchObject({ routes: [{ path: "/static" }] });
    expect(nodePath.resolve(ROOT, apps.site!.static!)).toBe(nodePath.join(ROOT, "examples/static"));
    expect(proxy.limits.client_max_body_size).toBe(10 * 1024 * 1024);
  });

  it("mentions every key of the schema (it documents them all)", async () => {
    const { readFileSync } = await import("node:fs");
    const text = readFileSync(nodePath.join(ROOT, "config.example.yaml"), "utf8");
    const { StackConfigSchema } = await import("../../src/config/schema.ts");
    const keys = new Set<string>();
    const collect = (schema: Record<string, unknown>): void => {
      for (const [key, child] of Object.entries((schema.properties as Record<string, Record<string, unknown>>) ?? {})) {
        keys.add(key);
        collect(child);
        if (child.items) collect(child.items as Record<string, unknown>);
        for (const value of Object.values((child.patternProperties as Record<string, Record<string, unknown>>) ?? {})) collect(value);
      }
    };
    collect(StackConfigSchema as unknown as Record<string, unknown>);
    const missing = [...keys].filter((key) => !new RegExp(`\\b${key}\\b`).test(text));
    expect(missing).toEqual([]);
  });
});
