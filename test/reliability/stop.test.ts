/**
 * R10, a graceful stop under load on the real stack: keep-alive clients at
 * 100 req/s, then SIGTERM to `tsgi-stack up`. Every request already sent is
 * answered in full; every answer begun after the stop says Connection: close
 * (so that no client reuses a connection that is about to end); the stack
 * exits 0 within its graceful_timeout and leaves no process. A request sent
 * after the stop began may be refused: the listener is closed, as it must be.
 */
import http from "node:http";
import { afterAll, describe, expect, it } from "vitest";
import { sleep } from "../helpers/serve.ts";
import { bound, reproduce } from "./bounds.ts";
import { type Answer, request } from "./load.ts";
import { proxyConfig, Stacks, TSGI_TYPES } from "./real-stack.ts";
import { failedFigure, ms, record } from "./record.ts";

const FILE = "test/reliability/stop.test.ts";
const stacks = new Stacks();
afterAll(() => stacks.cleanUp(), 90_000);

const BODY = `${"stop".repeat(512)}\n`;
/** Each request takes 300 ms, so that about 30 are in flight when the stop comes. */
const APP = `${TSGI_TYPES}
const BODY = ${JSON.stringify(BODY)};
export const app: TsgiApp = async (environ, start) => {
  await new Promise((resolve) => setTimeout(resolve, 300));
  start("200 OK", [["Content-Type", "text/plain"], ["Content-Length", String(BODY.length)]]);
  return [BODY];
};
`;

interface Outcome {
  sentAt: number;
  doneAt: number;
  answer?: Answer;
  error?: string;
}

describe("a graceful stop under keep-alive load", () => {
  it("R10: SIGTERM to the stack at 100 req/s: in-flight requests finish, answers after it say Connection: close, exit within graceful_timeout", async () => {
    const graceMs = 5_000;
    const beforeMs = bound(20_000, 3_000);
    const s = await stacks.start(
      `${proxyConfig()}apps:
  web:
    module: app.ts
    instances: 4
    graceful_timeout: ${graceMs}ms
    routes: [{ path: / }]
`,
      { "app.ts": APP },
    );
    await stacks.untilReady(s, "web", 4);
    await stacks.workerPids(s, "web");
    const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
    const outcomes: Promise<Outcome>[] = [];
    const begun = performance.now();
    let stopAt = Number.POSITIVE_INFINITY;
    let sent = 0;
    // 100 req/s over up to 50 kept-alive connections, until a second after the stop began.
    const timer = setInterval(() => {
      const due = Math.floor((performance.now() - begun) / 10);
      while (sent < due) {
        sent++;
        const sentAt = performance.now();
        outcomes.push(
          request(agent, `${s.url}/`).then(
            (answer) => ({ sentAt, doneAt: performance.now(), answer }),
            (error: Error & { code?: string }) => ({ sentAt, doneAt: performance.now(), error: error.code ?? error.message }),
          ),
        );
      }
    }, 10);
    await sleep(beforeMs);
    stopAt = performance.now();
    process.kill(s.stack.child.pid!, "SIGTERM");
    const code = await Promise.race([s.stack.exited, sleep(graceMs + 20_000).then(() => "still running")]);
    const exitMs = performance.now() - stopAt;
    clearInterval(timer);
    const all = await Promise.all(outcomes);
    agent.destroy();

    const inFlight = all.filter((o) => o.sentAt < stopAt);
    const inFlightFailed = inFlight.filter((o) => o.answer?.status !== 200 || o.answer.body.toString() !== BODY);
    // An answer that ended more than the handler's 300 ms after the stop was begun after it.
    const late = all.filter((o) => o.answer && o.doneAt > stopAt + 20);
    const withoutClose = late.filter((o) => o.answer!.headers.connection !== "close");
    const afterStop = all.filter((o) => o.sentAt >= stopAt);
    const figure =
      `in flight at the stop: ${failedFigure(inFlightFailed.length, inFlight.length)}; ` +
      `${withoutClose.length} / ${late.length} answers after the stop without Connection: close; ` +
      `${afterStop.filter((o) => o.error).length} / ${afterStop.length} sent after it refused; exit ${code} after ${ms(exitMs)} (graceful_timeout ${ms(graceMs)})`;
    const pass = inFlightFailed.length === 0 && withoutClose.length === 0 && code === 0 && exitMs <= graceMs + 10_000;
    record({ id: "R10", done: `SIGTERM to the stack under 100 req/s keep-alive load (4 workers)`, figure, pass });
    console.log(`R10: ${figure}`);
    expect(
      inFlightFailed.map((o) => o.error ?? `${o.answer!.status} ${o.answer!.body.length} bytes`),
      `R10: requests in flight at the stop that failed: ${figure}; rerun: ${reproduce(FILE)}`,
    ).toEqual([]);
    expect(inFlight.length).toBeGreaterThan(beforeMs / 10 - 50);
    expect(late.length, "no answer came after the stop: the test did not catch requests in flight").toBeGreaterThan(0);
    expect(withoutClose.length, figure).toBe(0);
    expect(code, s.stack.output().slice(-3000)).toBe(0);
    // The stop deadline: the drain (graceful_timeout) plus pm2's own shutdown.
    expect(exitMs, figure).toBeLessThanOrEqual(graceMs + 10_000);
    await stacks.stop(s);
  }, 90_000);
});
