/**
 * Reloads on the real stack (`tsgi-stack up`, pm2, 4 gateway workers, the
 * front proxy), under load from autocannon on loopback:
 *   R1  rolling reloads onto new code under steady load: 0 failed;
 *   R2  20 slow requests in flight when a reload starts: all complete;
 *   R3  a request longer than graceful_timeout: its old worker is killed at
 *       the deadline, the client gets an answer or a close, nothing is left;
 *   R4  a reload onto code that throws at import: it fails, says so, and the
 *       old workers serve on with 0 failed.
 * RELIABILITY_LONG=1 runs the matrix's bounds; without it, shorter runs of the
 * same tests (see bounds.ts).
 */
import { writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isAlive, sleep } from "../helpers/serve.ts";
import { bound, reproduce } from "./bounds.ts";
import { cannon, request } from "./load.ts";
import { proxyConfig, Stacks, TSGI_TYPES } from "./real-stack.ts";
import { ms, record } from "./record.ts";

const FILE = "test/reliability/reload.test.ts";
const stacks = new Stacks();
afterAll(() => stacks.cleanUp(), 90_000);

/** The 2 KB body every version answers with: the same bytes, so that autocannon can check each one. */
const BODY = `${"0123456789abcdef".repeat(128)}\n`;

/** The app at a version: / answers BODY (version in a header), /slow?ms=N sleeps first; `broken` throws at import. */
function appSource(version: string, broken = false): string {
  return `${TSGI_TYPES}
${broken ? `throw new Error("${version} does not load: thrown at import");` : ""}
const BODY = ${JSON.stringify(BODY)};
export const app: TsgiApp = async (environ, start) => {
  if (environ.PATH_INFO === "/slow") {
    await new Promise((resolve) => setTimeout(resolve, Number(new URLSearchParams(environ.QUERY_STRING).get("ms"))));
  }
  start("200 OK", [["Content-Type", "text/plain"], ["Content-Length", String(BODY.length)], ["X-Version", ${JSON.stringify(version)}], ["X-Pid", String(process.pid)]]);
  return [BODY];
};
`;
}

function config(instances: number, app = ""): string {
  return `${proxyConfig()}apps:
  web:
    module: app.ts
    instances: ${instances}
    routes: [{ path: / }]
${app}`;
}

describe("reloads under load on the real stack", () => {
  it("R1: rolling reloads of 4 workers onto new code under steady load: 0 failed, every body intact", async () => {
    // Short: one reload (the normal suite's test/integration/reload.test.ts already rolls ten under load).
    const reloads = bound(10, 1);
    const rate = bound(200, 100);
    // The load runs until the last reload is done (plus a second), and never longer than the cap.
    const capSeconds = bound(60, 20);
    const s = await stacks.start(config(4, "    graceful_timeout: 10s\n"), { "app.ts": appSource("v1") });
    await stacks.untilReady(s, "web", 4);
    const took: number[] = [];
    const reloadedLines = () => s.stack.output().match(/web: reloaded 4 workers/g)?.length ?? 0;
    const begun = Date.now();
    // One reload every 5 s at most (the matrix's pace), each onto new code, each after the one before is done.
    const reloading = (async () => {
      await sleep(1_000);
      for (let n = 1; n <= reloads; n++) {
        await sleep(Math.max(0, begun + 1_000 + (n - 1) * 5_000 - Date.now()));
        writeFileSync(path.join(s.dir, "app.ts"), appSource(`v${n + 1}`));
        // SIGHUP to `up` (what `tsgi-stack reload` asks for, without starting a CLI process each time: on 2
        // cores that start-up would eat into the 60 s the load may last); done when `up` says so.
        const asked = Date.now();
        const before = reloadedLines();
        process.kill(s.stack.child.pid!, "SIGHUP");
        while (reloadedLines() === before) {
          if (Date.now() - asked > 30_000) throw new Error(`R1: reload ${n} did not finish in 30 s:\n${s.stack.output().slice(-3000)}`);
          if (/reload failed/.test(s.stack.output())) throw new Error(`R1: reload ${n} failed:\n${s.stack.output().slice(-3000)}`);
          await sleep(50);
        }
        took.push(Date.now() - asked);
      }
      await sleep(1_000);
    })();
    const result = await cannon({ url: `${s.url}/`, rate, seconds: capSeconds, expectBody: BODY, until: reloading.catch(() => {}) });
    const loadSeconds = (Date.now() - begun) / 1000;
    await reloading;
    const answer = await request(false, `${s.url}/`);
    const figure = `${result.figure}; ${took.length} reloads in ${loadSeconds.toFixed(0)} s, each ${ms(Math.min(...took))}-${ms(Math.max(...took))}`;
    const pass = result.failed === 0 && took.length === reloads && loadSeconds < capSeconds && answer.headers["x-version"] === `v${reloads + 1}`;
    record({ id: "R1", done: `${reloads} rolling reloads of 4 workers at ${rate} req/s`, figure, pass });
    console.log(`R1: ${figure}`);
    expect(result.failures, `R1: ${figure}; rerun: ${reproduce(FILE)}`).toEqual([]);
    expect(result.failed).toBe(0);
    // Every reload happened under load, and the last code is what serves now.
    expect(loadSeconds, `R1: the ${reloads} reloads outlasted the ${capSeconds} s the load may last: ${figure}`).toBeLessThan(capSeconds);
    expect(result.total).toBeGreaterThan(rate * loadSeconds * 0.8);
    expect(answer.headers["x-version"]).toBe(`v${reloads + 1}`);
    await stacks.stop(s);
  }, 180_000);

  it("R2: 20 requests sleeping 5 s in flight when a reload starts: 20/20 complete with their full body; the old workers then exit", async () => {
    const instances = bound(4, 2);
    const s = await stacks.start(config(instances, "    graceful_timeout: 15s\n"), { "app.ts": appSource("v1") });
    const old = await stacks.untilReady(s, "web", instances);
    const agent = new http.Agent({ keepAlive: false });
    const sent = Date.now();
    const answers = Array.from({ length: 20 }, () =>
      request(agent, `${s.url}/slow?ms=5000`).then(
        (answer) => ({ ok: answer.status === 200 && answer.body.toString() === BODY && answer.headers["x-version"] === "v1", what: `${answer.status} ${answer.headers["x-version"]}` }),
        (error: Error) => ({ ok: false, what: error.message }),
      ),
    );
    await sleep(1000);
    writeFileSync(path.join(s.dir, "app.ts"), appSource("v2"));
    const reloadAt = Date.now();
    const reload = stacks.reload(s.file, "web");
    const results = await Promise.all(answers);
    const completed = results.filter((r) => r.ok).length;
    expect((await reload).code).toBe(0);
    // The old workers leave once drained: time from the reload to the last one gone.
    // Judged where the wait ends, never probed again: a pid asked about later may already be another process's.
    const deadline = Date.now() + 20_000;
    let stillAlive = old.filter(isAlive);
    while (stillAlive.length > 0 && Date.now() < deadline) {
      await sleep(50);
      stillAlive = old.filter(isAlive);
    }
    const oldGoneAfter = Date.now() - reloadAt;
    const figure = `${completed} / 20 completed with full body (${((Date.now() - sent) / 1000).toFixed(1)} s); old workers gone ${ms(oldGoneAfter)} after the reload began`;
    const pass = completed === 20 && stillAlive.length === 0;
    record({ id: "R2", done: "reload 1 s into 20 requests of 5 s each", figure, pass });
    console.log(`R2: ${figure}`);
    expect(results.filter((r) => !r.ok).map((r) => r.what), `R2: ${figure}; rerun: ${reproduce(FILE)}`).toEqual([]);
    expect(stillAlive, "old workers still alive 20 s after the drain").toEqual([]);
    expect((await request(false, `${s.url}/`)).headers["x-version"]).toBe("v2");
    await stacks.stop(s);
  }, 90_000);

  it("R3: a request longer than graceful_timeout during a reload: its old worker is killed at the deadline, the client is answered or closed, nothing leaks", async () => {
    const graceMs = bound(10_000, 3_000);
    // timeout 0: only the drain deadline may end the request, not the per-request timeout.
    const s = await stacks.start(config(1, `    graceful_timeout: ${graceMs}ms\n    timeout: 0\n`), { "app.ts": appSource("v1") });
    const [old] = await stacks.untilReady(s, "web", 1);
    const asked = Date.now();
    // A POST: a GET whose worker died under it would be sent to the new worker (as nginx's proxy_next_upstream
    // does), and run its 120 s again there; a POST is not sent twice, so the client sees the deadline.
    const outcome = request(false, `${s.url}/slow?ms=120000`, "POST", "x").then(
      (answer) => ({ at: Date.now() - asked, what: `status ${answer.status}` }),
      (error: Error & { code?: string }) => ({ at: Date.now() - asked, what: `closed (${error.code ?? error.message})` }),
    );
    await sleep(500);
    writeFileSync(path.join(s.dir, "app.ts"), appSource("v2"));
    const reloadAt = Date.now();
    const reload = await stacks.reload(s.file, "web");
    expect(reload.code, reload.stdout + reload.stderr).toBe(0);
    // The old worker is asked to stop once its replacement is ready; the deadline counts from there.
    const drainFrom = Date.now();
    while (isAlive(old!) && Date.now() - drainFrom < graceMs + 10_000) await sleep(20);
    const killedAfter = Date.now() - drainFrom;
    const client = await Promise.race([outcome, sleep(graceMs + 15_000).then(() => ({ at: -1, what: "no answer: hung" }))]);
    const answeredIn = client.at >= 0 && /^(status 502|closed)/.test(client.what);
    const figure = `old worker gone ${ms(killedAfter)} after the reload returned (graceful_timeout ${ms(graceMs)}, reload took ${ms(drainFrom - reloadAt)}); client: ${client.what} after ${ms(client.at)}`;
    // The drain may have begun before the reload command returned: the kill is due at most graceMs after it, and not much later.
    const pass = !isAlive(old!) && killedAfter <= graceMs + 2_000 && answeredIn;
    record({ id: "R3", done: `reload while a 120 s request runs, graceful_timeout ${graceMs / 1000} s`, figure, pass });
    console.log(`R3: ${figure}`);
    expect(isAlive(old!), `R3: ${figure}; rerun: ${reproduce(FILE)}`).toBe(false);
    expect(killedAfter, figure).toBeLessThanOrEqual(graceMs + 2_000);
    expect(client.at, figure).toBeGreaterThan(0);
    expect(client.what, figure).toMatch(/^(status 502|closed)/);
    expect(client.at, figure).toBeLessThanOrEqual(drainFrom - asked + graceMs + 2_000);
    // The new worker serves; stopping leaves no process (stop() checks every pid seen).
    expect((await request(false, `${s.url}/`)).headers["x-version"]).toBe("v2");
    await stacks.stop(s);
  }, 90_000);

  it("R4: a reload onto code that throws at import, under load: it fails and says so, the old workers serve on, 0 failed", async () => {
    const rate = 100;
    const seconds = bound(30, 4);
    const instances = bound(4, 2);
    const s = await stacks.start(config(instances), { "app.ts": appSource("v1") });
    const old = await stacks.untilReady(s, "web", instances);
    const load = cannon({ url: `${s.url}/`, rate, seconds, expectBody: BODY });
    await sleep(1000);
    writeFileSync(path.join(s.dir, "app.ts"), appSource("v2", true));
    const asked = Date.now();
    const reload = await stacks.reload(s.file, "web");
    const reportedAfter = Date.now() - asked;
    const result = await load;
    const now = await stacks.workerPids(s, "web");
    const answer = await request(false, `${s.url}/`);
    const figure = `${result.figure}; reload failed after ${ms(reportedAfter)} (exit ${reload.code})`;
    const pass = result.failed === 0 && reload.code !== 0 && answer.headers["x-version"] === "v1";
    record({ id: "R4", done: `reload onto code that throws at import, ${rate} req/s for ${seconds} s`, figure, pass });
    console.log(`R4: ${figure}`);
    expect(reload.code, `R4: the reload onto broken code did not fail: ${reload.stdout}${reload.stderr}`).not.toBe(0);
    expect(reload.stdout + reload.stderr).toContain("does not load: thrown at import");
    expect(result.failures, `R4: ${figure}; rerun: ${reproduce(FILE)}`).toEqual([]);
    expect(result.failed).toBe(0);
    expect(answer.headers["x-version"]).toBe("v1");
    expect(now.sort()).toEqual(old.sort());
    await stacks.stop(s);
  }, 120_000);
});
