/**
 * CodeWatcher (`up --watch`) on a real folder with real chokidar: a burst of
 * saves is one change per app, with the files; excluded globs, node_modules,
 * dot-folders and the state dir never trigger one; an editor's atomic save
 * (write a temp file, rename over) counts once.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CodeWatcher } from "../../src/stack/watch.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const watchers: CodeWatcher[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const watcher of watchers.splice(0)) await watcher.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function project(): Promise<{ dir: string; changes: [string, string[]][]; watcher: CodeWatcher }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tsgi-watch-"));
  dirs.push(dir);
  for (const sub of ["src", "node_modules/dep", ".git", ".tsgi/logs", "other"]) mkdirSync(path.join(dir, sub), { recursive: true });
  writeFileSync(path.join(dir, "src/app.ts"), "v0");
  const changes: [string, string[]][] = [];
  const watcher = new CodeWatcher(
    [
      { app: "web", globs: [path.join(dir, "src/**"), `!${path.join(dir, "src/**/*.test.ts")}`] },
      { app: "all", globs: [path.join(dir, "**/*.ts")] },
    ],
    { ignore: [path.join(dir, ".tsgi")], debounceMs: 100, onChange: (app, files) => changes.push([app, files.map((file) => path.relative(dir, file)).sort()]) },
  );
  watchers.push(watcher);
  await watcher.whenReady();
  return { dir, changes, watcher };
}

describe("CodeWatcher", () => {
  it("a burst of saves is one change per app, listing the files", async () => {
    const { dir, changes } = await project();
    for (let i = 1; i <= 5; i++) writeFileSync(path.join(dir, "src/app.ts"), `v${i}`);
    writeFileSync(path.join(dir, "src/util.ts"), "u");
    await sleep(600);
    expect(changes).toEqual([
      ["web", ["src/app.ts", "src/util.ts"]],
      ["all", ["src/app.ts", "src/util.ts"]],
    ]);
  });

  it("excluded globs, node_modules, dot-folders and the state dir never trigger a change", async () => {
    const { dir, changes } = await project();
    writeFileSync(path.join(dir, "src/app.test.ts"), "t");
    await sleep(400);
    expect(changes).toEqual([["all", ["src/app.test.ts"]]]);
    changes.length = 0;
    writeFileSync(path.join(dir, "node_modules/dep/index.ts"), "n");
    writeFileSync(path.join(dir, ".git/hook.ts"), "g");
    writeFileSync(path.join(dir, ".tsgi/logs/x.ts"), "l");
    writeFileSync(path.join(dir, "other/readme.md"), "r");
    await sleep(400);
    expect(changes).toEqual([]);
  });

  it("an atomic save (temp file renamed over the original) is one change", async () => {
    const { dir, changes } = await project();
    writeFileSync(path.join(dir, "src/.app.ts.swp"), "new");
    renameSync(path.join(dir, "src/.app.ts.swp"), path.join(dir, "src/app.ts"));
    await sleep(500);
    expect(changes.filter(([app]) => app === "web")).toEqual([["web", ["src/app.ts"]]]);
  });

  it("after close() nothing is reported", async () => {
    const { dir, changes, watcher } = await project();
    await watcher.close();
    writeFileSync(path.join(dir, "src/app.ts"), "late");
    await sleep(300);
    expect(changes).toEqual([]);
  });
});
