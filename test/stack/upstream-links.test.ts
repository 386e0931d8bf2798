/**
 * The upstream links' rule (stack/upstream-links.ts), on a real folder with
 * real symbolic links: n balanced workers hold positions 0 .. n-1; a
 * rolling reload's new worker takes the position of the old one it
 * replaces, by one rename (the link is never missing); a worker that leaves
 * frees its position to the next; links left by a dead stack are cleared;
 * a worker on a TCP port gets no position. The live proof behind nginx is
 * test/integration/nginx-front.test.ts.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { statePaths } from "../../src/contract/state-dir.ts";
import type { Endpoint } from "../../src/proxy/balancing/selector.ts";
import { UpstreamLinks } from "../../src/stack/upstream-links.ts";

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
    links.setEndpoints("web", [worker(0), worker(1)]);
    expect(targets()).toEqual({ "web.0.sock": "web.0.sock", "web.1.sock": "web.1.sock" });
    expect(readlinkSync(path.join(paths.upstreams, "web.1.uwsgi.sock"))).toBe(path.join(paths.sockets, "web.1.uwsgi.sock"));
  });

  it("moves a rolling reload's new worker into the position of the old one it replaces", () => {
    const { paths, worker, targets } = setUp();
    const links = new UpstreamLinks(paths, ["http"], () => undefined);
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

  it("frees a departed worker's position, and a restarted slot (a new pid) is a new worker", () => {
    const { paths, worker, targets } = setUp();
    const links = new UpstreamLinks(paths, ["http"], () => undefined);
    links.setEndpoints("web", [worker(0), worker(1), worker(2)]);
    links.setEndpoints("web", [worker(0), worker(2)]);
    expect(targets()).toEqual({ "web.0.sock": "web.0.sock", "web.1.sock": "web.2.sock" });
    links.setEndpoints("web", [worker(0, 5000), worker(2)]);
    expect(targets()).toEqual({ "web.0.sock": "web.0.sock", "web.1.sock": "web.2.sock" });
    links.setEndpoints("web", []);
    expect(targets()).toEqual({});
  });

  it("gives a worker on a TCP port no position, and says why in its view", () => {
    const { paths, worker, targets } = setUp();
    const links = new UpstreamLinks(paths, ["http"], () => undefined);
    links.setEndpoints("web", [{ id: "web.0", pid: 7, address: { kind: "tcp", host: "127.0.0.1", port: 4000 } }, worker(1)]);
    expect(targets()).toEqual({ "web.0.sock": "web.1.sock" });
    expect(links.views().find((view) => view.id === "web.0")?.outReason).toMatch(/port/);
  });

  it("clears the links a dead stack left, and its own when it stops", () => {
    const { paths, worker } = setUp();
    mkdirSync(paths.upstreams, { recursive: true });
    symlinkSync("/nowhere.sock", path.join(paths.upstreams, "old.0.sock"));
    const links = new UpstreamLinks(paths, ["http"], () => undefined);
    expect(readdirSync(paths.upstreams)).toEqual([]);
    links.setEndpoints("web", [worker(0)]);
    links.stop();
    expect(existsSync(paths.upstreams)).toBe(false);
  });
});
