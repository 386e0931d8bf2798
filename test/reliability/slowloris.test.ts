/**
 * L3, slowloris on the real stack: hundreds of sockets that send a request
 * head one byte at a time, reopened as soon as the proxy drops them, while
 * normal clients (autocannon) keep asking. Every slow socket must be closed
 * within proxy.limits.header_timeout (plus the time the check takes to
 * notice), and the normal clients must see 0 failures. The proxy process's
 * open file descriptors are sampled to show that the slow sockets do not pile
 * up.
 */
import { readdirSync, readFileSync } from "node:fs";
import net from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { procStat } from "../../src/contract/pids.ts";
import { sleep } from "../helpers/serve.ts";
import { bound, CAPS, reproduce } from "./bounds.ts";
import { cannon } from "./load.ts";
import { proxyConfig, Stacks, TSGI_TYPES } from "./real-stack.ts";
import { ms, record } from "./record.ts";

const FILE = "test/reliability/slowloris.test.ts";
const stacks = new Stacks();
afterAll(() => stacks.cleanUp(), 60_000);

const BODY = `${"legit".repeat(400)}\n`;
const APP = `${TSGI_TYPES}
const BODY = ${JSON.stringify(BODY)};
export const app: TsgiApp = (environ, start) => {
  start("200 OK", [["Content-Type", "text/plain"], ["Content-Length", String(BODY.length)]]);
  return [BODY];
};
`;

/** The pids of `parent`'s child processes running the proxy (stack/proxy-process). */
function proxyPids(parent: number): number[] {
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const ppid = Number(procStat(Number(name))?.[1]);
      if (ppid === parent && readFileSync(`/proc/${name}/cmdline`, "utf8").includes("proxy-process")) found.push(Number(name));
    } catch {
      // Gone between the listing and the read.
    }
  }
  return found;
}

function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

interface Slowloris {
  /** Stops opening sockets, destroys those still open, and returns the longest life (until the 408 or the close) and how many the proxy cut off. */
  stop(): { opened: number; closedByProxy: number; maxLifeMs: number; stillOpen: number };
}

/**
 * `count` sockets, each sending a request line and then one header byte every
 * `trickleMs`, never finishing; one the proxy closes is replaced at once.
 */
function slowloris(port: number, count: number, trickleMs: number): Slowloris {
  let stopped = false;
  let opened = 0;
  let closedByProxy = 0;
  let maxLifeMs = 0;
  const open = new Set<net.Socket>();
  const start = () => {
    if (stopped) return;
    opened++;
    const socket = net.connect(port, "127.0.0.1");
    const born = performance.now();
    open.add(socket);
    let timer: NodeJS.Timeout | undefined;
    socket.on("connect", () => {
      socket.write("GET / HTTP/1.1\r\nHost: web.test\r\nX-Slow: ");
      timer = setInterval(() => socket.write("a"), trickleMs);
    });
    // The proxy cuts a slow socket off by answering 408 or by closing it, whichever it does first; after a
    // 408 it may linger a moment (reading what the client still sends) before the close.
    let cutOff = false;
    const cut = () => {
      if (cutOff || stopped) return;
      cutOff = true;
      closedByProxy++;
      maxLifeMs = Math.max(maxLifeMs, performance.now() - born);
    };
    socket.on("data", cut);
    socket.on("end", cut);
    socket.on("error", () => {});
    socket.on("close", () => {
      cut();
      clearInterval(timer);
      open.delete(socket);
      if (!stopped) start();
    });
  };
  // Opened over the first second, not all at once.
  for (let i = 0; i < count; i++) setTimeout(start, (i * 1000) / count);
  return {
    stop() {
      stopped = true;
      const stillOpen = open.size;
      for (const socket of open) socket.destroy();
      return { opened, closedByProxy, maxLifeMs, stillOpen };
    },
  };
}

describe("slowloris beside normal clients", () => {
  it("L3: slow sockets trickling a request head are each closed within header_timeout; normal clients at 50 req/s see 0 failures", async () => {
    const headerTimeoutMs = bound(10_000, 2_000);
    const trickleMs = bound(5_000, 1_000);
    const seconds = bound(60, 8);
    const legitConnections = 10;
    // The harness cap counts every socket of the test: the slow ones and the normal clients'.
    const slowCount = bound(CAPS.sockets - legitConnections - 10, 100);
    const s = await stacks.start(
      `${proxyConfig(`header_timeout: ${headerTimeoutMs}ms`)}apps:
  web:
    module: app.ts
    instances: 2
    routes: [{ path: / }]
`,
      { "app.ts": APP },
    );
    const port = Number(new URL(s.url).port);
    const proxies = proxyPids(s.stack.child.pid!);
    expect(proxies.length, "no proxy process found under the stack").toBeGreaterThan(0);
    const fdsBefore = proxies.reduce((sum, pid) => sum + openFds(pid), 0);
    let peakFds = fdsBefore;
    const sampler = setInterval(() => (peakFds = Math.max(peakFds, proxies.reduce((sum, pid) => sum + openFds(pid), 0))), 250);

    const slow = slowloris(port, slowCount, trickleMs);
    await sleep(1_000);
    const legit = await cannon({ url: `${s.url}/`, rate: 50, seconds: seconds - 1, connections: legitConnections, expectBody: BODY });
    const attack = slow.stop();
    clearInterval(sampler);
    // Allowed: the timeout, plus the head check's own granularity (a second) and loopback scheduling.
    const allowedMs = headerTimeoutMs + 1_500;
    const figure =
      `legit ${legit.figure}; ${attack.opened} slow sockets, ${attack.closedByProxy} closed by the proxy, longest life ${ms(attack.maxLifeMs)} ` +
      `(header_timeout ${ms(headerTimeoutMs)}); proxy fds ${fdsBefore} -> peak ${peakFds}`;
    const pass = legit.failed === 0 && attack.maxLifeMs <= allowedMs && attack.closedByProxy >= slowCount;
    record({ id: "L3", done: `${slowCount} slowloris sockets (1 byte / ${trickleMs / 1000} s) for ${seconds} s beside 50 req/s normal`, figure, pass });
    console.log(`L3: ${figure}`);
    expect(legit.failures, `L3: normal clients failed: ${figure}; rerun: ${reproduce(FILE)}`).toEqual([]);
    expect(legit.failed).toBe(0);
    expect(attack.maxLifeMs, `L3: a slow socket outlived header_timeout: ${figure}`).toBeLessThanOrEqual(allowedMs);
    // Every slow socket of the first wave was cut off by the proxy, not by us.
    expect(attack.closedByProxy, figure).toBeGreaterThanOrEqual(slowCount);
    await stacks.stop(s);
  }, 120_000);
});
