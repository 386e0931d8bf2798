/**
 * The upstream links' rule (stack/upstream-links.ts), on a real folder with
 * real symbolic links: n balanced workers hold positions 0 .. n-1; a
 * rolling reload's new worker takes the position of the old one it
 * replaces, by one rename (the link is never missing); a worker that leaves
 * frees its position to the next; links left by a dead stack are cleared;
 * a worker on a TCP port gets no position. The live proof behind nginx is
 * test/integration/nginx-front.test.ts.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { statePaths } from "../../src/contract/state-dir.ts";
import type { Endpoint } from "../../src/proxy/balancing/selector.ts";
import { UpstreamLinks } from "../../src/stack/upstream-links.ts";
import { waitFor } from "../helpers/serve.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function setUp() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tsgi-links-"));
  dirs.push(dir);
  const paths = statePaths(dir);
  const worker = (slot: number, pid = 1000 + slot): Endpoint => ({ id: `web.${slot}`, pid, address: { kind: "unix", path: path.join(paths.sockets, `web.${slot}.sock`) } });
  /** Position -> the worker socket its link points at. */
  const targets = () =>
    Object.fromEntries(
      readdirSync(paths.upstreams)
        .filter((name) => name.startsWith("web.") && !name.includes("uwsgi"))
        .map((name) => [name, path.basename(readlinkSync(path.join(paths.upstreams, name)))]),
    );
  return { paths, worker, targets };
}

describe("upstream links", () => {
  it("gives n workers the positions 0 .. n-1, for HTTP and uwsgi", () => {
    const { paths, worker, targets } = setUp();
    const links = new UpstreamLinks(paths, ["http", "uwsgi"], () => undefined);
    links.configure({ web: { instances: 2 } });
    links.setEndpoints("web", [worker(0), worker(1)]);
    expect(targets()).toEqual({ "web.0.sock": "web.0.sock", "web.1.sock": "web.1.sock" });
    expect(readlinkSync(path.join(paths.upstreams, "web.1.uwsgi.sock"))).toBe(path.join(paths.sockets, "web.1.uwsgi.sock"));
  });

  it("moves a rolling reload's new worker into the position of the old one it replaces", () => {
    const { paths, worker, targets } = setUp();
    const links = new UpstreamLinks(paths, ["http"], () => undefined);
    links.configure({ web: { instances: 2 } });
    links.setEndpoints("web", [worker(0), worker(1)]);
    // The new worker joins beside the old ones (position 2, which nginx does not list), then the old one leaves.
    links.setEndpoints("web", [worker(0), worker(1), worker(2)]);
    expect(targets()).toEqual({ "web.0.sock": "web.0.sock", "web.1.sock": "web.1.sock", "web.2.sock": "web.2.sock" });
    links.setEndpoints("web", [worker(1), worker(2)]);
    expect(targets()).toEqual({ "web.0.sock": "web.2.sock", "web.1.sock": "web.1.sock" });
    links.setEndpoints("web", [worker(1), worker(2), worker(3)]);
    links.setEndpoints("web", [worker(2), worker(3)]);
    expect(targets()).toEqual({ "web.0.sock": "web.2.sock", "web.1.sock": "web.3.sock" });
    // No temporary link is left behind.
    expect(readdirSync(paths.upstreams).filter((name) => name.startsWith("."))).toEqual([]);
  });

  it("links the spare positions to the workers there are while fewer serve than instances, and a restarted slot (a new pid) is a new worker", () => {
    const { paths, worker, targets } = setUp();
    const links = new UpstreamLinks(paths, ["http"], () => undefined);
    links.configure({ web: { instances: 3 } });
    links.setEndpoints("web", [worker(0), worker(1), worker(2)]);
    // web.1 crashed: its position goes to web.2, and the third position, which nginx still lists, to web.0.
    links.setEndpoints("web", [worker(0), worker(2)]);
    expect(targets()).toEqual({ "web.0.sock": "web.0.sock", "web.1.sock": "web.2.sock", "web.2.sock": "web.0.sock" });
    links.setEndpoints("web", [worker(0, 5000), worker(2)]);
    expect(targets()).toEqual({ "web.0.sock": "web.0.sock", "web.1.sock": "web.2.sock", "web.2.sock": "web.0.sock" });
    // Scaled above instances at run time: every worker has a position of its own.
    links.setEndpoints("web", [worker(0), worker(2), worker(3), worker(4)]);
    expect(Object.keys(targets())).toHaveLength(4);
    links.setEndpoints("web", []);
    expect(targets()).toEqual({});
  });

  it("takes a worker failing its health check out, keeps that verdict through a reload of the same check, and brings it back when it passes", async () => {
    const { paths, targets } = setUp();
    mkdirSync(paths.sockets, { recursive: true });
    const health = { 0: 200, 1: 500 } as Record<number, number>;
    const servers = [0, 1].map((slot) => {
      const server = http.createServer((_req, res) => res.writeHead(health[slot]!).end());
      server.listen(path.join(paths.sockets, `web.${slot}.sock`));
      return server;
    });
    servers.forEach((server) => server.unref());
    const endpoint = (slot: number): Endpoint => ({ id: `web.${slot}`, pid: 100 + slot, address: { kind: "unix", path: path.join(paths.sockets, `web.${slot}.sock`) } });
    const check = { path: "/healthz", intervalMs: 50, timeoutMs: 500 };
    const links = new UpstreamLinks(paths, ["http"], () => undefined);
    links.configure({ web: { instances: 2, health: check } });
    links.setEndpoints("web", [endpoint(0), endpoint(1)]);
    expect(targets()).toEqual({ "web.0.sock": "web.0.sock", "web.1.sock": "web.1.sock" });
    await waitFor("web.1 out", async () => (targets()["web.1.sock"] === "web.0.sock" ? true : undefined), 5000, 20);
    expect(links.views().find((view) => view.id === "web.1")?.health).toBe("failing");
    // A config reload with the same check: the failing worker does not come back until a check passes.
    links.configure({ web: { instances: 2, health: { ...check } } });
    expect(targets()).toEqual({ "web.0.sock": "web.0.sock", "web.1.sock": "web.0.sock" });
    health[1] = 200;
    await waitFor("web.1 back", async () => (targets()["web.1.sock"] === "web.1.sock" ? true : undefined), 5000, 20);
    links.stop();
    for (const server of servers) server.close();
  });

  it("gives a worker on a TCP port no position, and says why in its view", () => {
    const { paths, worker, targets } = setUp();
    const links = new UpstreamLinks(paths, ["http"], () => undefined);
    links.configure({ web: { instances: 1 } });
    links.setEndpoints("web", [{ id: "web.0", pid: 7, address: { kind: "tcp", host: "127.0.0.1", port: 4000 } }, worker(1)]);
    expect(targets()).toEqual({ "web.0.sock": "web.1.sock" });
    expect(links.views().find((view) => view.id === "web.0")?.outReason).toMatch(/port/);
  });

  it("keeps the links a dead stack left until it places its own workers, then replaces them; clears its own when it stops", () => {
    const { paths, worker, targets } = setUp();
    mkdirSync(paths.upstreams, { recursive: true });
    for (const position of [0, 1, 2]) symlinkSync(path.join(paths.sockets, `web.${position + 4}.sock`), path.join(paths.upstreams, `web.${position}.sock`));
    symlinkSync("/gone.sock", path.join(paths.upstreams, "removed.0.sock"));
    writeFileSync(path.join(paths.upstreams, ".web.0.sock.99.new"), "");
    const links = new UpstreamLinks(paths, ["http"], () => undefined);
    links.configure({ web: { instances: 2 } });
    // A rename the dead stack never finished is swept; an app no longer in the config loses its links.
    expect(readdirSync(paths.upstreams).sort()).toEqual(["web.0.sock", "web.1.sock", "web.2.sock"]);
    // Until the new stack's membership arrives, nginx still reaches what the old one linked (workers it may adopt).
    expect(targets()).toEqual({ "web.0.sock": "web.4.sock", "web.1.sock": "web.5.sock", "web.2.sock": "web.6.sock" });
    links.setEndpoints("web", [worker(0), worker(1)]);
    expect(targets()).toEqual({ "web.0.sock": "web.0.sock", "web.1.sock": "web.1.sock" });
    links.stop();
    expect(existsSync(paths.upstreams)).toBe(false);
  });
});
