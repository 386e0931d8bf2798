/**
 * deploy/Dockerfile's build, replayed without a Docker engine: each stage's
 * COPY and npm steps run in a temp folder standing for the image's
 * filesystem (npm from the local cache when it has the packages), then the
 * runtime stage's CMD run there on free ports, as a user other than root
 * who owns only the folder the Dockerfile gives the node user: the example
 * routes answer through the proxy and the HEALTHCHECK passes.
 *
 * This is what `npm ci --omit=dev` from the lock file, the prebuilt dist/
 * and the example apps' own dependency give together; the packed tarball
 * installed as a dependency (`npm install --omit=dev <tarball>`) is
 * test/package/install.test.ts's, not repeated here. The RUN steps that
 * change the image's system folders (the symlink on PATH, the state
 * folder's owner) are not run here; the test reads them instead.
 *
 * It builds with tsc and installs twice (about 30 s of both cores), so it
 * runs beside `npm test`, not in it: `npm run test:image`, and `.ci/run`.
 * Every process started is stopped by its pid (test/helpers/stack.ts).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/ports.ts";
import { ROOT, httpGet, isAlive, sleep, waitFor } from "../helpers/serve.ts";
import { SERVING, cleanUpStacks, up } from "../helpers/stack.ts";
import { envPairs, execForm, healthcheckRunner, ignored, of, plainEnv, runtime, runtimeEnv, shell, stages } from "../helpers/dockerfile.ts";

const started = new Set<ChildProcess>();
const seenPids = new Set<number>();
const dirs: string[] = [];

afterAll(async () => {
  await cleanUpStacks(started, seenPids, dirs);
  expect([...seenPids].filter(isAlive)).toEqual([]);
}, 90_000);

const sh = shell(started);

const runHealthcheck = healthcheckRunner(sh);

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
