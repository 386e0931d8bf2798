/**
 * The admin listener's API against a real stack, as a user's script or
 * browser uses it: GET /status tells the truth about pool membership and
 * health, /events streams a snapshot then updates, POST /scale, /restart and
 * /reload act (with `+1`/`-1`), browsers' cross-site and rebinding requests
 * are refused, and off loopback a token is required — compared as a Bearer
 * token or a Basic password, and the stack refuses to start without one.
 */
import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpGet, runCli } from "../helpers/serve.ts";
import { stackDir, statusJson } from "../helpers/stack.ts";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { adminUrl, APP, getJson, Started, twoAppConfig, twoAppStack, until } from "./fixture.ts";

const started = new Started();
let file: string;
let front: string;
let admin: string;

beforeAll(async () => {
  ({ file, front, admin } = await twoAppStack(started));
}, 90_000);

afterAll(() => started.cleanUp(), 60_000);

/** Sends `request` as written on a new connection; resolves with all the server answered. */
function rawRequest(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.end(request));
    let answer = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (answer += chunk));
    socket.on("end", () => resolve(answer));
    socket.on("error", reject);
  });
}

/** The first `count` server-sent events of GET /events, parsed. */
function readEvents(url: string, count: number, headers: Record<string, string> = {}): Promise<{ event: string; data: any }[]> {
  return new Promise((resolve, reject) => {
    const events: { event: string; data: any }[] = [];
    const request = http.get(url, { headers }, (res) => {
      expect(res.headers["content-type"]).toMatch(/^text\/event-stream/);
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
          if (events.length === count) {
            request.destroy();
            resolve(events);
          }
        }
      });
    });
    request.on("error", (error) => (events.length < count ? reject(error) : undefined));
  });
}

describe("GET /status", () => {
  it("lists every worker with pid, state, health, pool membership, requests; pools with configured and running counts", async () => {
    for (let i = 0; i < 4; i++) await httpGet(`${front}/`);
    const status = await until(
      () => getJson(`${admin}/status`),
      (body) =>
        body.workers.filter((row: any) => row.app === "web" && row.health === "passing").length === 2 &&
        body.traffic.find((app: any) => app.app === "web")?.requests >= 4,
    );
    for (const row of status.workers) started.pids.add(row.pid);
    const web = status.workers.filter((row: any) => row.app === "web");
    expect(web.map((row: any) => [row.state, row.health, row.inPool])).toEqual([
      ["ready", "passing", true],
      ["ready", "passing", true],
    ]);
    // api has no health check: unchecked, and in the pool all the same.
    expect(status.workers.find((row: any) => row.app === "api")).toMatchObject({ health: "unchecked", inPool: true, inFlight: 0 });
    expect(web.every((row: any) => typeof row.lastHealthCheck === "string" && row.memory > 0 && row.pid > 0)).toBe(true);
    expect(status.pools.find((pool: any) => pool.app === "web")).toMatchObject({ instances: 2, configured: 2, ready: 2, inPool: 2 });
    expect(status.traffic.find((app: any) => app.app === "web").requests).toBeGreaterThanOrEqual(4);
  });

  it("a worker failing its health check is out of the pool in /status, with why, and in the recent activity", async () => {
    const sick = await httpGet(`${front}/sick`);
    const sickPid = Number(/(\d+)$/.exec(sick.body)![1]);
    const status = await until(
      () => getJson(`${admin}/status`),
      (body) => body.pools.find((pool: any) => pool.app === "web").inPool === 1 && body.activity.some((entry: any) => entry.kind === "health"),
    );
    const row = status.workers.find((worker: any) => worker.pid === sickPid);
    expect(row).toMatchObject({ state: "ready", health: "failing", inPool: false, outReason: "GET /health answered 500" });
    expect(status.pools.find((pool: any) => pool.app === "web")).toMatchObject({ ready: 2, inPool: 1 });
    expect(status.activity.some((entry: any) => entry.kind === "health" && !entry.ok && entry.message.includes(`pid ${sickPid}`))).toBe(true);
    // The CLI reads the same: one API.
    const cli = await statusJson(file);
    expect(cli.workers.find((worker: any) => worker.pid === sickPid)).toMatchObject({ health: "failing", inPool: false });
    // Traffic avoids it.
    for (let i = 0; i < 6; i++) expect((await httpGet(`${front}/`)).body).not.toContain(String(sickPid));
    // A restart replaces it with a healthy one.
    const restart = await fetch(`${admin}/restart?app=web`, { method: "POST" });
    expect(restart.status).toBe(200);
    expect(await restart.json()).toMatchObject({ restarted: ["web"] });
    const after = await until(
      () => getJson(`${admin}/status`),
      (body) => body.pools.find((pool: any) => pool.app === "web").inPool === 2,
    );
    expect(after.workers.some((worker: any) => worker.pid === sickPid)).toBe(false);
    for (const worker of after.workers) started.pids.add(worker.pid);
  }, 60_000);
});

describe("write actions", () => {
  it("POST /scale takes +1 and -1 from the running count; status shows running against configured", async () => {
    const up = await fetch(`${admin}/scale?app=api&n=+1`, { method: "POST" });
    expect(up.status).toBe(200);
    expect(await up.json()).toMatchObject({ app: "api", instances: 2, pool: { ready: 2 } });
    const scaled = await getJson(`${admin}/status`);
    expect(scaled.pools.find((pool: any) => pool.app === "api")).toMatchObject({ instances: 2, configured: 1 });
    for (const worker of scaled.workers) started.pids.add(worker.pid);
    const down = await fetch(`${admin}/scale?app=api&n=-1`, { method: "POST" });
    expect(await down.json()).toMatchObject({ instances: 1 });
    const below = await fetch(`${admin}/scale?app=api&n=-1`, { method: "POST" });
    expect(below.status).toBe(400);
    expect(await below.json()).toMatchObject({ code: "TSGI_ERR_CONTROL_BAD_INSTANCES" });
    const unknown = await fetch(`${admin}/reload?app=nope`, { method: "POST" });
    expect(unknown.status).toBe(400);
    expect((await unknown.json()).error).toContain('no app named "nope"');
  }, 60_000);

  it("refuses a write from another site, a rebinding Host, and a GET of a write", async () => {
    const crossSite = await fetch(`${admin}/restart?app=api`, { method: "POST", headers: { origin: "http://evil.example" } });
    expect(crossSite.status).toBe(403);
    const fetchSite = await fetch(`${admin}/restart?app=api`, { method: "POST", headers: { "sec-fetch-site": "cross-site" } });
    expect(fetchSite.status).toBe(403);
    const rebound = await httpGet(`${admin}/status`, { host: "evil.example" });
    expect(rebound.status).toBe(403);
    expect(JSON.parse(rebound.body).error).toContain("not a loopback name");
    const getWrite = await fetch(`${admin}/reload`);
    expect(getWrite.status).toBe(405);
    expect(getWrite.headers.get("allow")).toBe("POST");
    // The live feed never ends: a HEAD of it is refused rather than left hanging.
    const headFeed = await fetch(`${admin}/events`, { method: "HEAD" });
    expect(headFeed.status).toBe(405);
    const nowhere = await fetch(`${admin}/nope`);
    expect(nowhere.status).toBe(404);
    // A target that is no path (URL cannot parse it) is a 400, and the stack lives on.
    const { port } = new URL(admin);
    const raw = await rawRequest(Number(port), "GET //[ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect((await statusJson(file)).state).toBe("running");
    // The same origin is fine: what the status page sends.
    const sameOrigin = await fetch(`${admin}/scale?app=api&n=1`, { method: "POST", headers: { origin: admin } });
    expect(sameOrigin.status).toBe(200);
  }, 60_000);
});

describe("GET /events", () => {
  it("sends a snapshot with the plots' points, then an update a second with the newest point", async () => {
    await httpGet(`${front}/`);
    const [snapshot, update] = await readEvents(`${admin}/events`, 2);
    expect(snapshot!.event).toBe("snapshot");
    expect(snapshot!.data.status.workers.length).toBe(3);
    expect(snapshot!.data.series.stepMs).toBe(1000);
    expect(snapshot!.data.series.points.length).toBeGreaterThan(1);
    expect(update!.event).toBe("update");
    expect(update!.data.point.t).toBeGreaterThan(snapshot!.data.series.points.at(-1).t);
    expect(Object.keys(update!.data.point.apps).sort()).toEqual(["api", "web"]);
  });
});

describe("a token off loopback", () => {
  it("refuses to start an admin listener on 0.0.0.0 with no token, naming proxy.admin", async () => {
    const { dir, file: open } = stackDir(twoAppConfig(`"0.0.0.0:0"`), "tsgi-admin-");
    started.dirs.push(dir);
    writeFileSync(path.join(dir, "app.mjs"), APP);
    const result = await runCli(["up", "-c", open], 60_000);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("proxy.admin: 0.0.0.0:0 is not a loopback address");
    expect(result.stderr).toContain("proxy.admin_token");
  }, 60_000);

  it("requires the token from TSGI_ADMIN_TOKEN, as Bearer or Basic password, for reads and writes", async () => {
    const token = "s3cret-token-for-the-admin";
    const stack = await started.up(twoAppConfig(`"0.0.0.0:0"`), { TSGI_ADMIN_TOKEN: token });
    const url = await adminUrl(stack.file);
    const port = new URL(url).port;
    const base = `http://127.0.0.1:${port}`;
    const none = await fetch(`${base}/status`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Basic realm=/);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: "Bearer wrong-token-wrong-token" } })).status).toBe(401);
    const bearer = await fetch(`${base}/status`, { headers: { authorization: `Bearer ${token}` } });
    expect(bearer.status).toBe(200);
    for (const worker of (await bearer.json()).workers) started.pids.add(worker.pid);
    const basic = Buffer.from(`anyone:${token}`).toString("base64");
    expect((await fetch(`${base}/metrics`, { headers: { authorization: `Basic ${basic}` } })).status).toBe(200);
    // With the token, any Host will do (the listener is meant to be reached by name).
    expect((await httpGet(`${base}/status`, { host: "stack.example", authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await fetch(`${base}/scale?app=api&n=1`, { method: "POST" })).status).toBe(401);
    expect((await fetch(`${base}/scale?app=api&n=1`, { method: "POST", headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    // The control socket needs no token: the CLI works as ever.
    expect((await statusJson(stack.file)).state).toBe("running");
    expect((await runCli(["down", "-c", stack.file], 60_000)).code).toBe(0);
  }, 90_000);
});
