#!/usr/bin/env node
/**
 * What the test suite drives for real besides Node: Debian's nginx (in front
 * of the workers over uwsgi and HTTP), wrk (load), chromium (the admin page,
 * through playwright-core), promtool (checks the metrics' exposition) and
 * the official Prometheus client's Python parser (reads it back).
 * `npm test` runs this first (package.json "pretest"), so the README's test
 * command works on a fresh machine as CI runs it:
 *   - everything present: nothing happens;
 *   - something missing, and apt-get can run (as root, or sudo without a
 *     password): it is installed, as .ci/run used to do by itself;
 *   - otherwise: one message with the exact command to run, and exit 1 —
 *     the suite never starts half-equipped, and no test is skipped.
 * TSGI_SKIP_SYSTEM_PACKAGES=1 skips the check (a machine that has them elsewhere).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";

/** Each tool the tests run, where Debian puts it, and the package that provides it. */
const NEEDED = [
  { tool: "nginx", paths: ["/usr/sbin/nginx"], pkg: "nginx-light" },
  { tool: "wrk", paths: ["/usr/bin/wrk"], pkg: "wrk" },
  // A real client for compression and HTTP/2 (Debian's curl is built with nghttp2: --http2 works).
  { tool: "curl", paths: ["/usr/bin/curl"], pkg: "curl" },
  // The admin page's tests drive Debian's chromium through playwright-core (no browser download).
  { tool: "chromium", paths: ["/usr/bin/chromium"], pkg: "chromium" },
  // The /metrics tests check the exposition with Prometheus' own linter.
  { tool: "promtool", paths: ["/usr/bin/promtool"], pkg: "prometheus" },
  // ...and parse it with the official Prometheus client's text-format parser (Debian's python3 runs it).
  { tool: "the Prometheus client's Python parser", check: ["/usr/bin/python3", "-c", "import prometheus_client.parser"], pkg: "python3-prometheus-client" },
  // The systemd exporter's unit is checked by systemd's own verifier (offline: no running systemd needed).
  { tool: "systemd-analyze", paths: ["/usr/bin/systemd-analyze"], pkg: "systemd" },
];

function present({ tool, paths = [], check }) {
  if (check) return spawnSync(check[0], check.slice(1), { stdio: "ignore" }).status === 0;
  for (const path of paths) {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      // not there; try the PATH
    }
  }
  return spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status === 0;
}

function canRun(command, args) {
  return spawnSync(command, args, { stdio: "ignore" }).status === 0;
}

if (process.env.TSGI_SKIP_SYSTEM_PACKAGES === "1") process.exit(0);
const missing = NEEDED.filter((need) => !present(need));
if (missing.length === 0) process.exit(0);

const packages = missing.map((need) => need.pkg);
const install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...packages];
const hasApt = canRun("sh", ["-c", "command -v apt-get"]);
const asRoot = process.getuid?.() === 0;
const sudo = !asRoot && hasApt && canRun("sudo", ["-n", "true"]) ? ["sudo", "-n"] : [];

if (hasApt && (asRoot || sudo.length > 0)) {
  console.error(`tests: installing ${packages.join(", ")} (Debian packages the tests drive) …`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const run = (args) => execFileSync(sudo[0] ?? args[0], sudo.length ? [...sudo.slice(1), ...args] : args.slice(1), { stdio: ["ignore", "ignore", "inherit"], env });
  run(["apt-get", "update", "-qq"]);
  run(install);
  const still = NEEDED.filter((need) => !present(need));
  if (still.length === 0) process.exit(0);
  console.error(`tests: ${still.map((need) => need.tool).join(", ")} still missing after apt-get install`);
  process.exit(1);
}

console.error(
  `tests: the suite drives ${missing.map((need) => need.tool).join(" and ")} for real, and ${missing.length === 1 ? "it is" : "they are"} not installed.\n` +
    (hasApt
      ? `  Install with:  sudo ${install.join(" ")}\n  then run npm test again.`
      : `  Install ${missing.map((need) => need.tool).join(" and ")} with your system's package manager, then run npm test again.`),
);
process.exit(1);
