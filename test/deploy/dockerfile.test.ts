/**
 * deploy/Dockerfile, checked without a Docker engine (there is none here, nor
 * in CI), as a user would check it by hand:
 *
 * - read: its instructions parsed (a small parser below: comments, line
 *   continuations, flags, JSON and shell forms), the runtime stage's rules
 *   asserted (a non-root USER, production dependencies only, NODE_ENV,
 *   the proxy on 0.0.0.0 and EXPOSEd, STOPSIGNAL), every COPY source present
 *   in the repository and not dropped by deploy/Dockerfile.dockerignore, and
 *   CMD's config a file of the repository that `tsgi-stack validate` accepts
 *   with the image's environment;
 * - its HEALTHCHECK: the very command of the Dockerfile, run through `sh -c`
 *   as Docker runs it, against a real stack whose admin listener is on a free
 *   port (TSGI_ADMIN, which the command reads): 0 while the stack serves,
 *   non-zero once an app has no ready worker (a crash loop), non-zero once
 *   the stack is stopped;
 * - its build, replayed: each stage's COPY and npm steps run in a temp folder
 *   standing for the image's filesystem (npm from the local cache when it
 *   has the packages), then the runtime stage's CMD run there on free ports,
 *   as a user other than root who owns only the folder the Dockerfile gives
 *   the node user: the example routes answer through the proxy and the
 *   HEALTHCHECK passes.
 *   This is what `npm ci --omit=dev` from the lock file, the prebuilt dist/
 *   and the example apps' own dependency give together; the packed tarball
 *   installed as a dependency (`npm install --omit=dev <tarball>`) is
 *   test/package/install.test.ts's, not repeated here. The RUN steps that
 *   change the image's system folders (the symlink on PATH, the state
 *   folder's owner) are not run here; the test reads them instead.
 *
 * Every process started is stopped by its pid (test/helpers/stack.ts).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/ports.ts";
import { ROOT, httpGet, isAlive, sleep, waitFor } from "../helpers/serve.ts";
import { SERVING, cleanUpStacks, stackDir, statusJson, up } from "../helpers/stack.ts";

/* ------------------------------------------------------------------ the Dockerfile, parsed */

interface Instruction {
  /** Upper case: FROM, RUN, COPY, … */
  keyword: string;
  /** Leading `--name=value` flags (`--from=build`, `--mount=…`, `--interval=15s`). */
  flags: Record<string, string>;
  /** What follows the keyword and its flags, continuation lines joined as Docker joins them. */
  args: string;
  /** The instruction's first line in the file. */
  line: number;
}

interface Stage {
  base: string;
  name: string;
  instructions: Instruction[];
}

/**
 * Docker's reading of a Dockerfile, for the instructions this one uses: a
 * line ending in `\` continues on the next (the backslash dropped, the next
 * line's leading spaces kept); comment lines, also inside a continued
 * instruction, are dropped; empty lines too.
 */
function parseDockerfile(text: string): Stage[] {
  const lines = text.split("\n");
  const stages: Stage[] = [];
  const blank = (line: string) => /^\s*(#.*)?$/.test(line);
  const continued = /\\[ \t]*$/;
  for (let i = 0; i < lines.length; ) {
    const start = i + 1;
    if (blank(lines[i]!)) {
      i++;
      continue;
    }
    let line = lines[i++]!.trimStart();
    while (continued.test(line)) {
      line = line.replace(continued, "");
      while (i < lines.length && blank(lines[i]!)) i++;
      if (i >= lines.length) break;
      line += lines[i++]!;
    }
    const match = /^(\S+)\s*([\s\S]*)$/.exec(line.trimEnd())!;
    const keyword = match[1]!.toUpperCase();
    let args = match[2]!;
    const flags: Record<string, string> = {};
    for (let flag = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(args); flag; flag = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(args)) {
      flags[flag[1]!] = flag[2] ?? "";
      args = args.slice(flag[0].length);
    }
    if (keyword === "FROM") {
      const [base, as, name] = args.split(/\s+/);
      stages.push({ base: base!, name: as?.toUpperCase() === "AS" ? name! : String(stages.length), instructions: [] });
    } else {
      expect(stages.length, `line ${start}: ${keyword} before FROM`).toBeGreaterThan(0);
      stages.at(-1)!.instructions.push({ keyword, flags, args, line: start });
    }
  }
  return stages;
}

/** A JSON-form argument (CMD ["a", "b"]) as its array; undefined for the shell form. */
function execForm(args: string): string[] | undefined {
  if (!args.startsWith("[")) return undefined;
  const parsed: unknown = JSON.parse(args);
  return Array.isArray(parsed) && parsed.every((word) => typeof word === "string") ? parsed : undefined;
}

/** ENV's pairs: `ENV A=1 B="two"`, or the old `ENV A value`. */
function envPairs(args: string): Record<string, string> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(args)) {
    const [name, ...value] = args.split(/\s+/);
    return { [name!]: value.join(" ") };
  }
  const pairs: Record<string, string> = {};
  for (const pair of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|\S*)/g)) pairs[pair[1]!] = pair[3] ?? pair[2]!;
  return pairs;
}

const DOCKERFILE = path.join(ROOT, "deploy/Dockerfile");
const stages = parseDockerfile(readFileSync(DOCKERFILE, "utf8"));
const runtime = stages.at(-1)!;
const of = (stage: Stage, keyword: string) => stage.instructions.filter((instruction) => instruction.keyword === keyword);
const runtimeEnv = Object.assign({}, ...of(runtime, "ENV").map((env) => envPairs(env.args))) as Record<string, string>;

/** The HEALTHCHECK's command, exactly as Docker hands it to `/bin/sh -c`. */
const healthcheck = (() => {
  const found = of(runtime, "HEALTHCHECK");
  expect(found, "one HEALTHCHECK in the runtime stage").toHaveLength(1);
  const match = /^CMD\s+([\s\S]+)$/.exec(found[0]!.args);
  expect(match, `HEALTHCHECK ${found[0]!.args}: not HEALTHCHECK [flags] CMD …`).not.toBeNull();
  expect(execForm(match![1]!), "the HEALTHCHECK is in shell form (run with sh -c)").toBeUndefined();
  return match![1]!;
})();

/** deploy/Dockerfile.dockerignore as a test of a context path (relative, with /): Docker's patterns, as far as the file uses them. */
const ignored = (() => {
  const patterns = readFileSync(path.join(ROOT, "deploy/Dockerfile.dockerignore"), "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  expect(patterns.filter((pattern) => pattern.startsWith("!")), "no exceptions (this reading does not do them)").toEqual([]);
  const regexes = patterns.map(
    (pattern) =>
      new RegExp(
        `^${pattern
          .replace(/^\/+/, "")
          .replace(/[.+^${}()|[\]\\]/g, "\\$&")
          .replace(/\*\*\//g, "\u0000")
          .replace(/\*/g, "[^/]*")
          .replace(/\?/g, "[^/]")
          .replace(/\u0000/g, "(?:.*/)?")}$`,
      ),
  );
  // A path is out when it, or a folder above it, matches.
  return (rel: string) => {
    const parts = rel.split("/");
    return parts.some((_, n) => regexes.some((regex) => regex.test(parts.slice(0, n + 1).join("/"))));
  };
})();

/* ------------------------------------------------------------------ processes */

const started = new Set<ChildProcess>();
const seenPids = new Set<number>();
const dirs: string[] = [];

afterAll(async () => {
  await cleanUpStacks(started, seenPids, dirs);
  expect([...seenPids].filter(isAlive)).toEqual([]);
}, 90_000);

/** Runs a shell command as Docker's RUN and HEALTHCHECK do (`sh -c`); SIGKILLed by its pid after `timeoutMs`. */
async function sh(command: string, { cwd = ROOT, env, timeoutMs = 30_000 }: { cwd?: string; env: NodeJS.ProcessEnv; timeoutMs?: number }) {
  const child = spawn("/bin/sh", ["-c", command], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  started.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (data) => (stdout += data));
  child.stderr!.on("data", (data) => (stderr += data));
  const timer = setTimeout(() => {
    stderr += `\n[test: killed after ${timeoutMs} ms]`;
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGKILL");
  }, timeoutMs);
  const [code] = (await once(child, "close")) as [number | null];
  clearTimeout(timer);
  started.delete(child);
  return { code, stdout, stderr };
}

/** A plain environment (none of an enclosing `npm test`'s npm_* variables): PATH, HOME and `extra`. */
const plainEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? "/usr/bin:/bin"}`,
  HOME: os.homedir(),
  ...extra,
});

/** The HEALTHCHECK against the admin listener at `admin` (HOST:PORT). */
const runHealthcheck = (admin: string) => sh(healthcheck, { env: plainEnv({ TSGI_ADMIN: admin }), timeoutMs: 15_000 });

/* ------------------------------------------------------------------ the tests */

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

describe("deploy/Dockerfile's stages, replayed without Docker", () => {
  it("builds, installs production dependencies, and its CMD serves the example stack, healthy", async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), "tsgi-image-"));
    dirs.push(root);
    /** Each stage's filesystem: an image path under it. */
    const fsOf = (stage: string) => path.join(root, stage);
    const onHost = (stage: string, imagePath: string) => path.join(fsOf(stage), imagePath);
    const skipped: string[] = [];

    for (const stage of stages) {
      let workdir = "/";
      const env: Record<string, string> = {};
      for (const instruction of stage.instructions) {
        switch (instruction.keyword) {
          case "WORKDIR":
            workdir = path.posix.resolve(workdir, instruction.args);
            mkdirSync(onHost(stage.name, workdir), { recursive: true });
            break;
          case "ENV":
            Object.assign(env, envPairs(instruction.args));
            break;
          case "COPY": {
            const words = execForm(instruction.args) ?? instruction.args.split(/\s+/);
            const dest = path.posix.resolve(workdir, words.at(-1)!);
            const sources = words.slice(0, -1);
            const into = sources.length > 1 || words.at(-1)!.endsWith("/");
            for (const source of sources) {
              const from = instruction.flags.from === undefined ? path.join(ROOT, source) : onHost(instruction.flags.from, source);
              const target = onHost(stage.name, into ? path.posix.join(dest, path.basename(source)) : dest);
              mkdirSync(path.dirname(target), { recursive: true });
              cpSync(from, target, {
                recursive: true,
                // The context is the repository less what Dockerfile.dockerignore drops.
                filter: (file) => instruction.flags.from !== undefined || !ignored(path.relative(ROOT, file).split(path.sep).join("/")),
              });
            }
            break;
          }
          case "RUN": {
            // npm's steps run, in the stage's folder with its environment; npm takes packages
            // from the local cache when it has them. The others change the image's system
            // folders (read by the test above instead).
            if (!instruction.args.startsWith("npm ")) {
              skipped.push(instruction.args);
              break;
            }
            const result = await sh(instruction.args, {
              cwd: onHost(stage.name, workdir),
              env: plainEnv({ ...env, npm_config_prefer_offline: "true", npm_config_update_notifier: "false" }),
              timeoutMs: 240_000,
            });
            expect(result.code, `${stage.name}, line ${instruction.line}: RUN ${instruction.args}\n${result.stdout}\n${result.stderr}`).toBe(0);
            break;
          }
        }
      }
    }
    expect(skipped.map((command) => command.split(/\s+/)[0])).toEqual(["chmod", "mkdir"]);

    // The image's user: the stack runs as a user other than root (nobody, for the image's
    // node, when the test runs as root), owning only what the Dockerfile gives the node
    // user (its chown) and a home of its own; all else is root's, as in the image.
    const user = of(runtime, "USER").at(-1)!.args;
    const owned = skipped.flatMap((command) => [...command.matchAll(/\bchown (\S+) (\S+)/g)]);
    expect(owned.map((found) => found[1])).toEqual([`${user}:${user}`]);
    const asRoot = process.getuid?.() === 0;
    const nobody = { uid: 65534, gid: 65534 };
    const home = path.join(root, "home");
    for (const target of [home, ...owned.map((found) => onHost(runtime.name, found[2]!))]) {
      mkdirSync(target, { recursive: true });
      if (asRoot) chownSync(target, nobody.uid, nobody.gid);
    }
    chmodSync(root, 0o755);

    // The container: CMD in the runtime stage's WORKDIR, with its ENV, on free ports.
    const app = onHost(runtime.name, of(runtime, "WORKDIR").at(-1)!.args);
    dirs.push(app); // cleanUpStacks reads its .tsgi/pm2/pm2.pid
    expect(existsSync(path.join(app, "node_modules/typescript")), "a dev dependency was installed").toBe(false);
    expect(existsSync(path.join(app, "node_modules/pm2")), "a production dependency is missing").toBe(true);
    const cmd = execForm(of(runtime, "CMD").at(-1)!.args)!;
    const port = await freePort();
    let adminPort = await freePort();
    while (adminPort === port) adminPort = await freePort();
    const admin = `127.0.0.1:${adminPort}`;
    const stack = spawn(process.execPath, [path.join(app, "dist/cli/bin.js"), ...cmd.slice(1).map((word) => (word.startsWith("/") ? onHost(runtime.name, word) : word))], {
      cwd: app,
      env: { ...plainEnv({ ...runtimeEnv, TSGI_LISTEN: `127.0.0.1:${port}`, TSGI_ADMIN: admin }), HOME: home },
      ...(asRoot ? nobody : {}),
      stdio: ["ignore", "pipe", "pipe"],
    });
    started.add(stack);
    seenPids.add(stack.pid!);
    let output = "";
    stack.stdout!.on("data", (data) => (output += data));
    stack.stderr!.on("data", (data) => (output += data));
    const exited = new Promise<number | null>((resolve) => stack.once("exit", (code) => resolve(code)));
    await waitFor(
      "the stack to serve",
      async () => {
        if (stack.exitCode !== null) throw new Error(`up exited ${stack.exitCode}:\n${output}`);
        return SERVING.test(output) ? true : undefined;
      },
      90_000,
    );
    try {
      const status = (await waitFor("GET /status", async () => {
        try {
          const response = await httpGet(`http://${admin}/status`);
          return response.status === 200 ? JSON.parse(response.body) : undefined;
        } catch {
          return undefined;
        }
      })) as { workers: Array<{ pid: number }> };
      for (const worker of status.workers) seenPids.add(worker.pid);
      if (asRoot) {
        for (const pid of [stack.pid!, ...status.workers.map((worker) => worker.pid)]) {
          expect(readFileSync(`/proc/${pid}/status`, "utf8"), `pid ${pid}`).toMatch(new RegExp(`^Uid:\\s+${nobody.uid}\\s`, "m"));
        }
      }

      const base = `http://127.0.0.1:${port}`;
      const expected: Array<[string, RegExp]> = [
        ["/hello", /^Hello from TSGI: GET \/hello/],
        ["/express/", /^Hello from Express behind TSGI/],
        ["/legacy/", /^Hello from a plain node:http server/],
        ["/static/", /<html/i],
      ];
      for (const [route, body] of expected) {
        const response = await httpGet(base + route);
        expect(response.status, `GET ${route}: ${response.body}\n${output}`).toBe(200);
        expect(response.body, route).toMatch(body);
      }
      const health = await waitFor("the HEALTHCHECK to pass on the example stack", async () => {
        const result = await runHealthcheck(admin);
        return result.code === 0 ? result : undefined;
      });
      expect(health.stdout.trim()).toBe("healthy");
    } finally {
      // docker stop: SIGTERM (STOPSIGNAL), and the stack drains and exits 0.
      process.kill(stack.pid!, "SIGTERM");
      expect(await Promise.race([exited, sleep(60_000).then(() => "timeout")]), output).toBe(0);
    }
  }, 300_000);
});
