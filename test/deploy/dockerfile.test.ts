/**
 * deploy/Dockerfile, checked without a Docker engine (there is none here, nor
 * in CI), as a user would check it by hand:
 *
 * - read (test/helpers/dockerfile.ts parses it): the runtime stage's rules
 *   asserted (a non-root USER, production dependencies only, NODE_ENV,
 *   the proxy on 0.0.0.0 and EXPOSEd, STOPSIGNAL), every COPY source present
 *   in the repository and not dropped by deploy/Dockerfile.dockerignore, and
 *   CMD's config a file of the repository that `tsgi-stack validate` accepts
 *   with the image's environment;
 * - its HEALTHCHECK: the very command of the Dockerfile, run through `sh -c`
 *   as Docker runs it, against a real stack whose admin listener is on a free
 *   port (TSGI_ADMIN, which the command reads): 0 while the stack serves,
 *   non-zero once an app has no ready worker (a crash loop), non-zero once
 *   the stack is stopped.
 *
 * The build replayed stage by stage is test/deploy/image-replay.test.ts
 * (outside `npm test`: `.ci/run` runs it). Every process started is stopped
 * by its pid (test/helpers/stack.ts).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/ports.ts";
import { ROOT, httpGet, isAlive, waitFor } from "../helpers/serve.ts";
import { cleanUpStacks, stackDir, statusJson, up } from "../helpers/stack.ts";
import { execForm, healthcheck, healthcheckRunner, ignored, of, plainEnv, runtime, runtimeEnv, shell, stages } from "../helpers/dockerfile.ts";

const started = new Set<ChildProcess>();
const seenPids = new Set<number>();
const dirs: string[] = [];

afterAll(async () => {
  await cleanUpStacks(started, seenPids, dirs);
  expect([...seenPids].filter(isAlive)).toEqual([]);
}, 90_000);

const sh = shell(started);

const runHealthcheck = healthcheckRunner(sh);

describe("deploy/Dockerfile, read", () => {
  it("builds in a build stage and runs in a runtime stage, both on Debian's node:20-bookworm-slim", () => {
    expect(stages.map((stage) => stage.name)).toEqual(["build", "runtime"]);
    for (const stage of stages) expect(stage.base, stage.name).toBe("node:20-bookworm-slim");
    expect(of(stages[0]!, "RUN").map((run) => run.args)).toEqual(expect.arrayContaining([expect.stringMatching(/^npm ci\b/), "npm run build"]));
  });

  it("runs as the image's node user, never root", () => {
    const users = of(runtime, "USER").map((user) => user.args.split(":")[0]);
    expect(users.at(-1)).toBe("node");
    expect(["root", "0"]).not.toContain(users.at(-1));
    // Nothing runs after the last USER but the image's own settings: CMD starts as node.
    const last = runtime.instructions.findLastIndex((instruction) => instruction.keyword === "USER");
    expect(runtime.instructions.slice(last + 1).filter((instruction) => ["RUN", "COPY", "ADD"].includes(instruction.keyword))).toEqual([]);
  });

  it("installs production dependencies only, with NODE_ENV=production", () => {
    const installs = of(runtime, "RUN").filter((run) => /\bnpm (ci|install|i)\b/.test(run.args));
    expect(installs.some((run) => /\bnpm ci\b/.test(run.args) && run.args.includes("--omit=dev"))).toBe(true);
    for (const run of installs) expect(run.args, `line ${run.line}`).toContain("--omit=dev");
    expect(runtimeEnv.NODE_ENV).toBe("production");
  });

  it("listens on all addresses inside the container, EXPOSEs that port, stops with SIGTERM", () => {
    const listen = /^0\.0\.0\.0:(\d+)$/.exec(runtimeEnv.TSGI_LISTEN ?? "");
    expect(listen, `ENV TSGI_LISTEN=${runtimeEnv.TSGI_LISTEN}`).not.toBeNull();
    expect(of(runtime, "EXPOSE").flatMap((expose) => expose.args.split(/\s+/))).toContain(listen![1]);
    // config.example.yaml takes its listener from that variable.
    expect(readFileSync(path.join(ROOT, "config.example.yaml"), "utf8")).toMatch(/listen: \["\$\{TSGI_LISTEN:-127\.0\.0\.1:8080\}"\]/);
    expect(of(runtime, "STOPSIGNAL").map((stop) => stop.args)).toEqual(["SIGTERM"]);
  });

  it("checks health with node's own fetch (the slim image has no curl)", () => {
    expect(healthcheck).toMatch(/^node -e /);
    expect(healthcheck).toContain("fetch(");
    expect(healthcheck).not.toMatch(/\b(curl|wget)\b/);
  });

  it("copies only what is in the repository and not dropped by Dockerfile.dockerignore, which keeps node_modules, .tsgi, test-results and .git out", () => {
    for (const rel of ["node_modules/pm2/package.json", "examples/express/node_modules/x", ".tsgi/pm2/pm2.pid", "test-results/a.json", ".git/HEAD"]) {
      expect(ignored(rel), rel).toBe(true);
    }
    const names = new Set(stages.map((stage) => stage.name));
    for (const stage of stages) {
      for (const copy of of(stage, "COPY")) {
        const words = execForm(copy.args) ?? copy.args.split(/\s+/);
        const sources = words.slice(0, -1);
        expect(sources.length, `line ${copy.line}: COPY with no source`).toBeGreaterThan(0);
        if (copy.flags.from !== undefined) {
          expect(names.has(copy.flags.from), `line ${copy.line}: --from=${copy.flags.from} is no stage`).toBe(true);
          continue;
        }
        for (const source of sources) {
          expect(existsSync(path.join(ROOT, source)), `line ${copy.line}: COPY ${source}: not in the repository`).toBe(true);
          expect(ignored(path.normalize(source)), `line ${copy.line}: COPY ${source}: dropped by Dockerfile.dockerignore`).toBe(false);
        }
      }
    }
  });

  it("runs `tsgi-stack up -c` on a config of the repository, which validate accepts with the image's environment", async () => {
    const cmd = execForm(of(runtime, "CMD").at(-1)!.args);
    expect(cmd?.slice(0, 3)).toEqual(["tsgi-stack", "up", "-c"]);
    // tsgi-stack is on PATH through a link to the built CLI, which must start with a shebang.
    const link = of(runtime, "RUN")
      .map((run) => /\bln -s (\S+) (\S+)/.exec(run.args))
      .find((found) => found?.[2] === "/usr/local/bin/tsgi-stack");
    expect(link?.[1]).toMatch(/\/dist\/cli\/bin\.js$/);
    expect(readFileSync(path.join(ROOT, "dist/cli/bin.js"), "utf8")).toMatch(/^#!\/usr\/bin\/env node\n/);
    // The config's path in the image, traced back through WORKDIR and COPY to the repository.
    const workdir = of(runtime, "WORKDIR").at(-1)!.args;
    const inImage = path.posix.resolve(workdir, cmd![3]!);
    const copied = of(runtime, "COPY")
      .filter((copy) => copy.flags.from === undefined)
      .flatMap((copy) => {
        const words = copy.args.split(/\s+/);
        const dest = path.posix.resolve(workdir, words.at(-1)!);
        return words.slice(0, -1).map((source) => ({ source, at: words.length > 2 || words.at(-1)!.endsWith("/") ? path.posix.join(dest, path.basename(source)) : dest }));
      })
      .find((entry) => entry.at === inImage);
    expect(copied, `CMD's config ${inImage} is copied from nowhere`).toBeDefined();
    const config = path.join(ROOT, copied!.source);
    expect(existsSync(config)).toBe(true);
    const child = spawn(process.execPath, [path.join(ROOT, "dist/cli/bin.js"), "validate", "-c", config], {
      env: plainEnv(runtimeEnv),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.on("data", (data) => (output += data));
    child.stderr!.on("data", (data) => (output += data));
    const [code] = (await once(child, "close")) as [number | null];
    expect(code, output).toBe(0);
  });

  it("installs the example apps' express at package-lock.json's version", () => {
    const lock = JSON.parse(readFileSync(path.join(ROOT, "package-lock.json"), "utf8"));
    const pinned = of(runtime, "RUN")
      .map((run) => /\bexpress@(\S+)/.exec(run.args)?.[1])
      .find(Boolean);
    expect(pinned).toBe(lock.packages["node_modules/express"].version);
  });
});

describe("deploy/Dockerfile's HEALTHCHECK, run against a real stack", () => {
  it("passes while the stack serves, fails when an app has no ready worker, fails when the stack is stopped", async () => {
    const admin = `127.0.0.1:${await freePort()}`;
    const { dir, file } = stackDir(
      `proxy:
  listen: ["127.0.0.1:0"]
  admin: "\${TSGI_ADMIN}"
apps:
  web:
    module: web.mjs
    routes: [{ path: /web }]
    restart: { max_restarts: 2, backoff: 100ms }
  site:
    static: public
    routes: [{ path: /site }]
`,
      "tsgi-healthcheck-",
    );
    dirs.push(dir);
    // Exits as it loads while a file `crash` is beside it: a crash loop on demand.
    writeFileSync(
      path.join(dir, "web.mjs"),
      `import { existsSync } from "node:fs";
if (existsSync(new URL("./crash", import.meta.url))) process.exit(1);
export const app = (environ, start) => { start("200 OK", [["Content-Type", "text/plain"]]); return ["ok\\n"]; };
`,
    );
    mkdirSync(path.join(dir, "public"));
    const stack = await up(file, { env: { TSGI_ADMIN: admin }, onSpawn: (child) => (started.add(child), seenPids.add(child.pid!)) });

    const healthy = await waitFor("the HEALTHCHECK to pass", async () => {
      const result = await runHealthcheck(admin);
      return result.code === 0 ? result : undefined;
    });
    expect(healthy.stdout.trim()).toBe("healthy");
    expect((await httpGet(`${stack.url}/web/`)).status).toBe(200);

    // The app's one worker dies, and every new one exits as it loads.
    writeFileSync(path.join(dir, "crash"), "");
    const workers = (await statusJson(file)).workers as Array<{ app: string; pid: number }>;
    for (const worker of workers) seenPids.add(worker.pid);
    process.kill(workers.find((worker) => worker.app === "web")!.pid, "SIGKILL");
    const sick = await waitFor("the HEALTHCHECK to fail", async () => {
      const result = await runHealthcheck(admin);
      return result.code !== 0 ? result : undefined;
    });
    expect(sick.code).toBe(1);
    expect(sick.stdout).toMatch(/^unhealthy: .*web: no ready worker/m);

    // The stack stopped: nothing answers.
    process.kill(stack.child.pid!, "SIGINT");
    expect(await stack.exited, stack.output()).toBe(0);
    const down = await runHealthcheck(admin);
    expect(down.code, down.stdout + down.stderr).toBe(1);
    expect(down.stdout).toMatch(/^unhealthy: /);
  }, 120_000);
});
