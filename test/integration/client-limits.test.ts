/**
 * Limits per client address on a whole stack, as a user checks them:
 * `tsgi-stack up` with an app's `rate_limit`, a burst of requests answered
 * 200 then 429 with Retry-After, the refusals counted on the admin
 * listener's /metrics, and the limit changed by saving the config file
 * while the stack runs (the proxy process takes the new limit, and keeps
 * what the client has used). Every process is stopped by its pid
 * (test/helpers/stack.ts cleanUpStacks).
 */
import { writeFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { httpGet, sleep } from "../helpers/serve.ts";
import { parseExposition, sumOf } from "../helpers/prometheus.ts";
import { adminUrl, Started, until } from "../admin/fixture.ts";

const started = new Started();
afterAll(() => started.cleanUp(), 60_000);

/** One app, its rate one request a minute (so nothing drains during the test), `burst` ahead of it. */
const config = (burst: number) => `proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
  access_log: off
apps:
  web:
    module: app.mjs
    routes: [{ path: / }]
    rate_limit: { rate: 1r/m, burst: ${burst}, nodelay: true }
`;

describe("rate_limit on a running stack", () => {
  it("answers a burst 200 then 429 with Retry-After, counts the refusals, and takes a new limit from a saved config", async () => {
    const { file, stack } = await started.up(config(2));
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const answer = await httpGet(`${stack.url}/`);
      statuses.push(answer.status);
      if (answer.status === 429) expect(Number(answer.headers["retry-after"])).toBeGreaterThan(0);
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);

    const admin = await adminUrl(file);
    const limited = async () => sumOf(parseExposition(await (await fetch(`${admin}/metrics`)).text()), "tsgi_proxy_limited_requests_total", { app: "web", limit: "rate" });
    expect(await until(limited, (count) => count === 2)).toBe(2);

    // A burst of 5: three more requests fit beside the three already made.
    writeFileSync(file, config(5));
    let first = 0;
    const deadline = Date.now() + 15_000;
    while (first !== 200 && Date.now() < deadline) {
      first = (await httpGet(`${stack.url}/`)).status;
      if (first !== 200) await sleep(200);
    }
    expect(first).toBe(200);
    const after = [(await httpGet(`${stack.url}/`)).status, (await httpGet(`${stack.url}/`)).status, (await httpGet(`${stack.url}/`)).status];
    expect(after).toEqual([200, 200, 429]);
  }, 90_000);
});
