/**
 * Redirects and response headers on a whole stack, as a user checks them:
 * `tsgi-stack up` with a redirect app (no worker process for it), an app's
 * `headers` and `trailing_slash`; the redirect answered by the proxy
 * process, the admin listener's /status listing the redirect app with its
 * kind and no pool, and a changed header taken from a saved config while
 * the stack runs. Every process is stopped by its pid (test/helpers/stack.ts
 * cleanUpStacks).
 */
import { writeFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { httpGet, sleep } from "../helpers/serve.ts";
import { adminUrl, Started } from "../admin/fixture.ts";

const started = new Started();
afterAll(() => started.cleanUp(), 60_000);

const config = (hsts: string) => `proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
  access_log: off
apps:
  web:
    module: app.mjs
    routes: [{ path: / }]
    trailing_slash: add
    headers: { Strict-Transport-Security: "${hsts}" }
  moved:
    redirect: { to: https://new.example.com/manual, status: 308 }
    routes: [{ path: /docs }]
`;

describe("redirects and headers on a running stack", () => {
  it("answers a redirect app with no worker, sets the app's headers, and takes a changed header from a saved config", async () => {
    const { file, stack } = await started.up(config("max-age=60"));
    const moved = await httpGet(`${stack.url}/docs/a%20b?x=1`);
    expect([moved.status, moved.headers.location]).toEqual([308, "https://new.example.com/manual/a%20b?x=1"]);
    const slash = await httpGet(`${stack.url}/page?x=1`);
    expect([slash.status, slash.headers.location, slash.headers["strict-transport-security"]]).toEqual([308, "/page/?x=1", "max-age=60"]);
    const page = await httpGet(`${stack.url}/page/`);
    expect([page.status, page.headers["strict-transport-security"]]).toEqual([200, "max-age=60"]);

    const status = (await (await fetch(`${await adminUrl(file)}/status`)).json()) as { apps: { app: string; kind: string }[]; pools: { app: string }[] };
    expect(status.apps.find((app) => app.app === "moved")?.kind).toBe("redirect");
    expect(status.pools.map((pool) => pool.app)).toEqual(["web"]);

    writeFileSync(file, config("max-age=31536000"));
    let hsts: string | undefined;
    const deadline = Date.now() + 15_000;
    while (hsts !== "max-age=31536000" && Date.now() < deadline) {
      hsts = (await httpGet(`${stack.url}/page/`)).headers["strict-transport-security"] as string | undefined;
      if (hsts !== "max-age=31536000") await sleep(200);
    }
    expect(hsts).toBe("max-age=31536000");
  }, 90_000);
});
