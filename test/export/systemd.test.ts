/**
 * `tsgi-stack export systemd` and `startup --dry-run`: the unit a user
 * installs to keep a stack up across reboots, checked by systemd's own
 * verifier (`systemd-analyze verify`, Debian's systemd package, which needs
 * no running systemd), and the rules it encodes: restart on failure, reload
 * as SIGHUP, stop as SIGTERM with the drain time, the user and the folder.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { systemdUnit, unitName } from "../../src/export/systemd.ts";
import { stackIdFor } from "../../src/stack/stack-id.ts";
import { BIN, runCli } from "../helpers/serve.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A config (one app, graceful_timeout 20s) in a new folder whose name has a space and a dollar in it. */
function configDir(): { dir: string; file: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tsgi export $ "));
  dirs.push(dir);
  writeFileSync(path.join(dir, "app.mjs"), "export default (environ, start) => { start('200 OK', []); return ['ok']; };\n");
  const file = path.join(dir, "tsgi.yaml");
  writeFileSync(file, `apps:\n  web:\n    module: app.mjs\n    graceful_timeout: 20s\n    routes: [{ path: / }]\n`);
  return { dir, file };
}

const setting = (unit: string, key: string) => unit.split("\n").filter((line) => line.startsWith(`${key}=`)).map((line) => line.slice(key.length + 1));

describe("export systemd", () => {
  it("writes a unit systemd-analyze verify accepts, running up on this config as the given user", async () => {
    const { dir, file } = configDir();
    const out = path.join(dir, "stack.service");
    const result = await runCli(["export", "systemd", "-c", file, "--user", os.userInfo().username, "-o", out]);
    expect(result.code, result.stderr).toBe(0);
    const unit = readFileSync(out, "utf8");
    const verify = spawnSync("systemd-analyze", ["verify", out], { encoding: "utf8" });
    expect(verify.stderr).toBe("");
    expect(verify.status).toBe(0);
    expect(setting(unit, "User")).toEqual([os.userInfo().username]);
    expect(setting(unit, "WorkingDirectory")).toEqual([dir]);
    expect(setting(unit, "Restart")).toEqual(["on-failure"]);
    expect(setting(unit, "ExecReload")).toEqual(["/bin/kill -HUP $MAINPID"]);
    expect(setting(unit, "KillSignal")).toEqual(["SIGTERM"]);
    // The drain (graceful_timeout 20 s) and a margin for the proxy and pm2 to stop.
    expect(setting(unit, "TimeoutStopSec")).toEqual(["35"]);
    // The config's path, with its space and dollar, reaches `up` as one word.
    expect(setting(unit, "ExecStart")).toEqual([`${process.execPath} ${BIN} up -c "${file.replace(/\$/g, "$$$$")}"`]);
  });

  it("with --no-proxy runs `up --no-proxy`, its sockets group-writable for nginx's workers, and systemd-analyze verify accepts it", async () => {
    const { dir, file } = configDir();
    const out = path.join(dir, "no-proxy.service");
    const result = await runCli(["export", "systemd", "-c", file, "--user", os.userInfo().username, "--no-proxy", "-o", out]);
    expect(result.code, result.stderr).toBe(0);
    const unit = readFileSync(out, "utf8");
    expect(setting(unit, "ExecStart")[0]).toMatch(/ up -c .* --no-proxy$/);
    expect(setting(unit, "UMask")).toEqual(["0002"]);
    const verify = spawnSync("systemd-analyze", ["verify", out], { encoding: "utf8" });
    expect(verify.stderr).toBe("");
    expect(verify.status).toBe(0);
  });

  it("names the unit after the stack, so two stacks on a machine get two units", () => {
    const a = stackIdFor("/srv/a/tsgi.yaml");
    const b = stackIdFor("/srv/b/tsgi.yaml");
    expect(unitName(a)).not.toBe(unitName(b));
    expect(unitName(a)).toMatch(/^tsgi-[0-9a-f]+\.service$/);
  });

  it("adds Group= only when asked", () => {
    const input = { configFile: "/srv/app/tsgi.yaml", stackId: "tsgi-1", drainMs: 30_000, node: "/usr/bin/node", cli: "/usr/lib/tsgi/bin.js", user: "web" };
    expect(setting(systemdUnit(input), "Group")).toEqual([]);
    expect(setting(systemdUnit({ ...input, group: "www-data" }), "Group")).toEqual(["www-data"]);
  });
});

describe("startup --dry-run", () => {
  it("prints the unit it would install and the systemctl commands, and writes nothing", async () => {
    const { file } = configDir();
    const name = unitName(stackIdFor(file));
    const result = await runCli(["startup", "-c", file, "--dry-run", "--user", "web"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`# would write /etc/systemd/system/${name}:`);
    expect(result.stdout).toContain("User=web\n");
    expect(result.stdout).toContain(`systemctl daemon-reload\nsystemctl enable --now ${name}\n`);
    expect(existsSync(`/etc/systemd/system/${name}`)).toBe(false);
  });
});
