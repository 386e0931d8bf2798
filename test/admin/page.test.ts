/**
 * The admin status page (src/admin/page) in headless Chromium, against a
 * fake of the admin API (fake-admin.ts) fed from fixture StackStatus data:
 * the page's own rules, before the real admin server exists —
 *   - every app and worker listed, static apps with their folder;
 *   - an `update` changes the numbers in place, without reloading the page,
 *     and grows the plots by its point; a focused button keeps the focus;
 *   - failing health, out-of-pool reasons and why a worker is down shown as words;
 *   - config and reload errors shown as alerts;
 *   - Reload POSTs same-origin (as the server's write rule wants), its buttons disabled until the
 *     answer, which is shown; an error answer's text is shown, and a 200
 *     that reports a failure (a pool left short) as a failure;
 *   - request URLs shown as text, never as markup;
 *   - a lost feed shown as "disconnected – retrying", and recovered;
 *   - at phone width (375 px) the page does not scroll sideways;
 *   - no uncaught script error along the way, nor a breach of a strict
 *     Content-Security-Policy (default-src 'self': no inline code or style);
 * with screenshots in test-results/admin-page/.
 * The end-to-end test against a real stack is page-e2e.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { type Browser, type Page, chromium } from "playwright-core";
import { ROOT } from "../helpers/serve.ts";
import type { StackStatus } from "../../src/stack/status.ts";
import { type FakeAdmin, startFakeAdmin } from "./fake-admin.ts";
import { point, series, stackStatus } from "./status-fixture.ts";

const SHOTS = path.join(ROOT, "test-results", "admin-page");

let fake: FakeAdmin;
let browser: Browser;
let page: Page;
let tick = 0;
/** Uncaught errors of the page's script, and its Content-Security-Policy violations: none may happen. */
const pageErrors: string[] = [];
const now = Date.now();

/** Sends an update made from the fake's current status, changed by `change`. */
function update(change: (status: StackStatus) => void = () => {}): void {
  const status = structuredClone(fake.status);
  change(status);
  tick += 1;
  fake.update({ status, point: point(now + tick * 1000, 60 + tick) });
}

const text = (selector: string) => page.locator(selector).first().textContent();
const worker = (key: string, field: string) => text(`[data-worker="${key}"] [data-field="${field}"]`);

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  fake = await startFakeAdmin(stackStatus(), series(now));
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(15_000);
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error" && /Content Security Policy/i.test(message.text())) pageErrors.push(message.text());
  });
  await page.goto(fake.url);
  await page.locator('[data-worker="web.0"]').waitFor();
});

afterAll(async () => {
  await browser?.close();
  await fake?.close();
});

describe("admin page against a fake admin API", () => {
  it("lists every app with its workers, and static apps with their folder", async () => {
    expect(await worker("web.0", "pid")).toBe("1001");
    expect(await worker("web.1", "pid")).toBe("1002");
    expect(await worker("api.0", "pid")).toBe("2001");
    expect(await worker("web.0", "state")).toContain("ready");
    expect(await worker("web.0", "memory")).toBe("64.0 MiB");
    expect(await text('[data-app-section="web"] [data-field="instances"]')).toContain("2 running of 2 configured");
    expect(await text('[data-app-section="docs"] [data-field="kind"]')).toBe("static");
    expect(await text('[data-app-section="docs"] [data-field="folder"]')).toContain("/srv/site/public");
    expect(await page.locator('[data-app-section="docs"] button').count()).toBe(0);
    expect(await text("#connection")).toContain("live");
    expect(await page.locator("#activity li").count()).toBe(2);
    expect(await page.locator('[data-proxy="0"] [data-field="pid"]').textContent()).toBe("3001");
    // One worker is the least a pool runs: api's − is off, web's is on.
    expect(await page.locator('button[data-action="scale"][data-app="api"][data-n="-1"]').isDisabled()).toBe(true);
    expect(await page.locator('button[data-action="scale"][data-app="web"][data-n="-1"]').isDisabled()).toBe(false);
  });

  it("applies an update in place: a restart count changes without a page load, the plot grows", async () => {
    await page.evaluate(() => ((window as any).__samePage = true));
    const plotPoints = () => page.locator('[data-app-section="web"] [data-line="rate"]').getAttribute("points").then((value) => value!.split(" ").length);
    const before = await plotPoints();
    update((status) => {
      status.workers[1]!.restarts = 4;
      status.workers[1]!.pid = 1003;
    });
    await expect.poll(() => worker("web.1", "restarts")).toBe("4");
    expect(await worker("web.1", "pid")).toBe("1003");
    expect(await plotPoints()).toBe(before + 1);
    expect(await page.evaluate(() => (window as any).__samePage)).toBe(true);
  });

  it("keeps the keyboard focus on a button across updates", async () => {
    await page.locator('button[data-action="restart"][data-app="web"]').focus();
    update((status) => {
      status.workers[0]!.requests += 10;
    });
    await expect.poll(() => worker("web.0", "requests")).toBe("1210");
    expect(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.action)).toBe("restart");
  });

  it("shows a failing health check and the reason a worker is out of the pool as words", async () => {
    update((status) => {
      const api = status.workers.find((entry) => entry.app === "api")!;
      Object.assign(api, { health: "failing", inPool: false, outReason: "GET /health answered 500" });
      status.pools[1]!.inPool = 0;
    });
    await expect.poll(() => worker("api.0", "health")).toContain("failing");
    expect(await worker("api.0", "pool")).toBe("✗ out: GET /health answered 500");
    expect(await page.locator('[data-worker="api.0"]').getAttribute("data-health")).toBe("failing");
  });

  it("says why a worker that is not ready is down", async () => {
    update((status) => {
      Object.assign(status.workers[1]!, { state: "down", pid: 0, inPool: false, lastError: "exited with code 1; restarting in 2s" });
    });
    await expect.poll(() => worker("web.1", "state")).toBe("✕ down: exited with code 1; restarting in 2s");
    expect(await worker("web.1", "pid")).toBe("–");
    update((status) => {
      Object.assign(status.workers[1]!, { state: "ready", pid: 1004, inPool: true });
    });
    await expect.poll(() => worker("web.1", "state")).toBe("● ready");
  });

  it("shows config and reload errors as alerts", async () => {
    update((status) => {
      status.configErrors = ["tsgi.yaml:4:5 apps.web.instances: must be an integer ≥ 1"];
      status.reloadErrors = { web: { message: "new worker 0 exited with code 4 (APP_LOAD_ERROR)", at: new Date(now).toISOString(), frame: "> 3 | export const app = ;" } };
    });
    await page.locator('[data-alert="config"]').waitFor();
    expect(await text('[data-alert="config"]')).toContain("apps.web.instances: must be an integer");
    expect(await text('[data-alert="reload"][data-app="web"]')).toContain("APP_LOAD_ERROR");
    expect(await page.locator("#alerts").getAttribute("role")).toBe("alert");
    update((status) => {
      status.configErrors = [];
      status.reloadErrors = {};
    });
    await page.locator("#alerts").waitFor({ state: "hidden" });
  });

  it("Reload POSTs with the action header, waits with its buttons disabled, then shows the outcome", async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    fake.answer = async () => {
      await held;
      return { status: 200, body: { config: "unchanged", changes: [], configErrors: [], reloads: [{ app: "web", ok: true, replaced: 2, ms: 1400 }] } };
    };
    const reload = page.locator('button[data-action="reload"][data-app="web"]');
    expect(await reload.getAttribute("aria-label")).toContain("Reload web");
    await reload.click();
    await expect.poll(() => reload.isDisabled()).toBe(true);
    expect(await page.locator('button[data-action="restart"][data-app="web"]').isDisabled()).toBe(true);
    // A second app's buttons are not held by web's action.
    expect(await page.locator('button[data-action="reload"][data-app="api"]').isDisabled()).toBe(false);
    release();
    const outcome = page.locator('[data-app-outcome="web"]');
    await expect.poll(() => outcome.textContent()).toContain("Reload web: done, 2 workers replaced in 1.4 s");
    expect(await outcome.getAttribute("aria-live")).toBe("polite");
    expect(await outcome.getAttribute("data-outcome")).toBe("ok");
    expect(await reload.isDisabled()).toBe(false);
    // Disabling it dropped the focus; it is back on the button for the keyboard.
    expect(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.action)).toBe("reload");
    expect(fake.posts).toHaveLength(1);
    expect(fake.posts[0]!.url).toBe("/reload?app=web");
    expect(fake.posts[0]!.headers["sec-fetch-site"]).toBe("same-origin");
  });

  it("shows a 200 answer that reports a failure as a failure: a restart that left the pool short", async () => {
    fake.answer = () => ({ status: 200, body: { restarted: ["api"], pools: [{ app: "api", ready: 0, instances: 1, error: "worker 0 exited with code 4 (APP_LOAD_ERROR)" }] } });
    await page.locator('button[data-action="restart"][data-app="api"]').click();
    const outcome = page.locator('[data-app-outcome="api"]');
    await expect.poll(() => outcome.getAttribute("data-outcome")).toBe("error");
    expect(await outcome.textContent()).toContain("Restart api failed: api: 0 of 1 worker ready: worker 0 exited with code 4 (APP_LOAD_ERROR)");
    expect(fake.posts.at(-1)!.url).toBe("/restart?app=api");
  });

  it("Scale + sends n=+1 and shows the server's error text", async () => {
    fake.answer = () => ({ status: 409, body: { error: "web is being reloaded; try again when it ends", code: "ADMIN_BUSY" } });
    await page.locator('button[data-action="scale"][data-app="web"][data-n="+1"]').click();
    const outcome = page.locator('[data-app-outcome="web"]');
    await expect.poll(() => outcome.getAttribute("data-outcome")).toBe("error");
    expect(await outcome.textContent()).toContain("Scale web failed: web is being reloaded; try again when it ends (ADMIN_BUSY)");
    const post = fake.posts.at(-1)!;
    expect(post.action).toBe("scale");
    expect(post.params).toEqual({ app: "web", n: "+1" });
    expect(post.headers["sec-fetch-site"]).toBe("same-origin");
  });

  it("shows request URLs as text, never as markup", async () => {
    const url = '/<img src=x onerror="window.__xss=1">';
    update((status) => {
      status.recentErrors.push({ at: new Date(now).toISOString(), app: "web", status: 500, method: "GET", url, requestId: "req-xss" });
    });
    const cell = page.locator('[data-error="req-xss"] [data-field="request"]');
    await expect.poll(() => cell.textContent()).toBe(`GET ${url}`);
    expect(await page.locator("#errors img").count()).toBe(0);
    expect(await page.evaluate(() => (window as any).__xss)).toBeUndefined();
  });

  it("shows a lost feed as disconnected – retrying, and recovers without a page load", async () => {
    fake.setFeed("down");
    await expect.poll(() => text("#connection")).toContain("disconnected – retrying");
    expect(await page.locator("body").getAttribute("data-connection")).toBe("disconnected");
    await page.screenshot({ path: path.join(SHOTS, "disconnected.png") });
    fake.setFeed("up");
    await expect.poll(() => text("#connection"), { timeout: 15_000 }).toContain("live");
    expect(await page.evaluate(() => (window as any).__samePage)).toBe(true);
    await page.screenshot({ path: path.join(SHOTS, "desktop.png"), fullPage: true });
  });

  it("fits a phone (375 px): no horizontal scroll, light and dark, long alerts and URLs included", async () => {
    update((status) => {
      status.configErrors = [`/srv/site/a-rather-long-folder-name/tsgi.yaml:12:7 apps.web.routes[0].path: must start with "/"`];
      status.reloadErrors = { web: { message: "new worker 0 exited with code 4 (APP_LOAD_ERROR)", at: new Date(now).toISOString(), frame: `> 12 | export const app = createHandlerWithAVeryLongNameThatDoesNotBreak(${"x".repeat(80)});` } };
      status.recentErrors.push({ at: new Date(now).toISOString(), app: "web", status: 504, method: "GET", url: `/search?q=${"y".repeat(150)}`, requestId: "req-long" });
    });
    for (const colorScheme of ["light", "dark"] as const) {
      const phone = await browser.newPage({ viewport: { width: 375, height: 812 }, colorScheme, isMobile: true, hasTouch: true });
      try {
        await phone.goto(fake.url);
        await phone.locator('[data-worker="web.0"]').waitFor();
        const width = await phone.evaluate(() => document.documentElement.scrollWidth);
        expect(width).toBeLessThanOrEqual(375);
        // Worker rows are cards there: each field on its own labelled line.
        expect(await phone.locator('[data-worker="web.0"] [data-field="restarts"]').evaluate((cell) => getComputedStyle(cell).display)).toBe("flex");
        await phone.screenshot({ path: path.join(SHOTS, `phone-${colorScheme}.png`), fullPage: true });
      } finally {
        await phone.close();
      }
    }
  });

  it("ran without a script error or a Content-Security-Policy violation", () => {
    expect(pageErrors).toEqual([]);
  });
});
