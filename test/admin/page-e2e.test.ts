/**
 * The admin status page on a real stack, end to end: `tsgi-stack up` of a
 * two-app config (web: 2 workers with an active health check; api: 1),
 * the page opened in headless Chromium at the admin address that `status
 * --json` reports, and the stack changed under it —
 *   - both apps' workers listed with the pids `status` gives;
 *   - a worker SIGKILLed: its slot's restart count rises and its pid
 *     changes on the page, without a page load;
 *   - a worker told to fail its health check (/fail-health): marked failing
 *     and out of the pool;
 *   - Reload clicked: the outcome shown, new pids on the page;
 *   - Scale + then −: a third worker listed, "3 running of 2 configured",
 *     then gone;
 * with a screenshot in test-results/admin-page/e2e.png.
 * It needs the admin server that serves the page, /events and the write
 * actions (src/admin); page.test.ts checks the page's rules on a fake API.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type Browser, type Page, chromium } from "playwright-core";
import { ROOT, httpGet } from "../helpers/serve.ts";
import { cleanUpStacks, stackDir, statusJson, up, type Up } from "../helpers/stack.ts";

const SHOTS = path.join(ROOT, "test-results", "admin-page");

const started = new Set<ChildProcess>();
const seenPids = new Set<number>();
const dirs: string[] = [];

/** Answers `NAME PID`; /health fails (500) once this process got /fail-health. */
function appSource(name: string): string {
  return `import type { TsgiApp } from ${JSON.stringify(path.join(ROOT, "src/tsgi/types.ts"))};
let failing = false;
export const app: TsgiApp = (environ, start) => {
  if (environ.PATH_INFO === "/health") {
    start(failing ? "500 Internal Server Error" : "200 OK", [["Content-Type", "text/plain"]]);
    return [failing ? "failing\\n" : "ok\\n"];
  }
  if (environ.PATH_INFO === "/fail-health") failing = true;
  start("200 OK", [["Content-Type", "text/plain"]]);
  return [${JSON.stringify(name)} + " " + process.pid + "\\n"];
};
`;
}

const CONFIG = `proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
  access_log: off
apps:
  web:
    module: web.ts
    instances: 2
    routes: [{ path: / }]
    health: { path: /health, interval: 500ms }
  api:
    module: api.ts
    instances: 1
    routes: [{ path: /api }]
`;

let stack: Up;
let file: string;
let browser: Browser;
let page: Page;

/** The pids `status --json` gives, by "app.slot". */
async function pids(): Promise<Record<string, number>> {
  const status = await statusJson(file);
  const byWorker: Record<string, number> = {};
  for (const worker of status.workers) {
    byWorker[`${worker.app}.${worker.slot}`] = worker.pid;
    seenPids.add(worker.pid);
  }
  return byWorker;
}

const cell = (worker: string, field: string) => page.locator(`[data-worker="${worker}"] [data-field="${field}"]`).textContent();

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const made = stackDir(CONFIG, "tsgi-admin-page-");
  dirs.push(made.dir);
  file = made.file;
  writeFileSync(path.join(made.dir, "web.ts"), appSource("web"));
  writeFileSync(path.join(made.dir, "api.ts"), appSource("api"));
  stack = await up(file, { onSpawn: (child) => started.add(child) });
  const { admin } = await statusJson(file);
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(20_000);
  await page.goto(`http://${admin}/`);
  await page.locator('[data-worker="web.1"]').waitFor();
  await page.evaluate(() => ((window as any).__samePage = true));
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await cleanUpStacks(started, seenPids, dirs);
}, 60_000);

describe("admin page on a real two-app stack", () => {
  it("lists both apps' workers with the pids status gives", async () => {
    const before = await pids();
    for (const worker of ["web.0", "web.1", "api.0"]) {
      await expect.poll(() => cell(worker, "pid")).toBe(String(before[worker]));
      expect(await cell(worker, "state")).toContain("ready");
    }
    expect(await page.locator('[data-app-section="web"] [data-field="instances"]').textContent()).toContain("2 running of 2 configured");
    expect(await page.locator("#connection").textContent()).toContain("live");
  });

  it("shows a killed worker's restart and new pid without a page load", async () => {
    const before = await pids();
    const restarts = Number(await cell("web.0", "restarts"));
    process.kill(before["web.0"]!, "SIGKILL");
    await expect.poll(async () => Number(await cell("web.0", "restarts")), { timeout: 30_000 }).toBeGreaterThan(restarts);
    await expect.poll(() => cell("web.0", "pid"), { timeout: 30_000 }).not.toBe(String(before["web.0"]));
    await expect.poll(() => cell("web.0", "state"), { timeout: 30_000 }).toContain("ready");
    expect(await page.evaluate(() => (window as any).__samePage)).toBe(true);
  }, 90_000);

  it("marks a worker that fails its health check, and takes it out of the pool", async () => {
    await pids();
    const answer = await httpGet(`${stack.url}/fail-health`);
    expect(answer.status).toBe(200);
    const pid = answer.body.trim().split(" ")[1]!;
    const row = page.locator('tr[data-worker^="web."]', { has: page.locator(`[data-field="pid"]:text-is("${pid}")`) });
    await expect.poll(() => row.locator('[data-field="health"]').textContent(), { timeout: 30_000 }).toContain("failing");
    expect(await row.locator('[data-field="pool"]').textContent()).toContain("out");
    expect(await page.locator('[data-app-section="web"] [data-field="instances"]').textContent()).toContain("1 in pool");
  }, 90_000);

  it("Reload replaces web's workers: the outcome and the new pids on the page", async () => {
    const before = await pids();
    const oldWeb = Object.entries(before).filter(([worker]) => worker.startsWith("web.")).map(([, pid]) => String(pid));
    await page.locator('button[data-action="reload"][data-app="web"]').click();
    const outcome = page.locator('[data-app-outcome="web"]');
    await expect.poll(() => outcome.getAttribute("data-outcome"), { timeout: 60_000 }).toBe("ok");
    expect(await outcome.textContent()).toContain("Reload web: done");
    // A reload's new workers take new slots: the page lists two web workers, none with an old pid, both passing.
    const webPids = () => page.locator('tr[data-worker^="web."] [data-field="pid"]').allTextContents();
    await expect.poll(async () => (await webPids()).filter((pid) => !oldWeb.includes(pid)).length, { timeout: 30_000 }).toBe(2);
    await expect.poll(async () => (await webPids()).length, { timeout: 30_000 }).toBe(2);
    await expect
      .poll(() => page.locator('tr[data-worker^="web."] [data-field="health"]').allTextContents(), { timeout: 30_000 })
      .toEqual([expect.stringContaining("passing"), expect.stringContaining("passing")]);
    // api was not reloaded.
    expect(await cell("api.0", "pid")).toBe(String(before["api.0"]));
    await pids(); // the new workers, for the clean-up
    await page.screenshot({ path: path.join(SHOTS, "e2e.png"), fullPage: true });
  }, 120_000);

  it("Scale + and − change the running count against the configured one", async () => {
    const instances = page.locator('[data-app-section="web"] [data-field="instances"]');
    const webRows = page.locator('tr[data-worker^="web."]');
    await page.locator('button[data-action="scale"][data-app="web"][data-n="+1"]').click();
    await expect.poll(() => instances.textContent(), { timeout: 60_000 }).toContain("3 running of 2 configured");
    await expect.poll(() => webRows.count(), { timeout: 30_000 }).toBe(3);
    await expect.poll(async () => (await webRows.locator('[data-field="state"]').allTextContents()).filter((state) => state.includes("ready")).length, { timeout: 30_000 }).toBe(3);
    await pids(); // the new worker, for the clean-up
    await page.locator('button[data-action="scale"][data-app="web"][data-n="-1"]').click();
    await expect.poll(() => instances.textContent(), { timeout: 60_000 }).toContain("2 running of 2 configured");
    await expect.poll(() => webRows.count(), { timeout: 30_000 }).toBe(2);
    expect(await page.locator('[data-app-outcome="web"]').getAttribute("data-outcome")).toBe("ok");
  }, 150_000);
});
