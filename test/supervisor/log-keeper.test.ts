/**
 * The log keeper on real files in a temp dir (no processes): what it relays
 * of a slot's file and in what bound, and how it rotates it.
 */
import { afterEach, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { LogKeeper, RELAY_BYTES, rotate, type RelayedLine } from "../../src/supervisor/log-keeper.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function setUp(maxBytes: number, keep: number) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tsgi-log-keeper-"));
  dirs.push(dir);
  const lines: RelayedLine[] = [];
  let listening = true;
  const keeper = new LogKeeper(dir, { maxBytes, keep }, () => (listening ? (line) => lines.push(line) : undefined));
  return { dir, keeper, lines, mute: () => (listening = false) };
}

describe("LogKeeper", () => {
  it("relays the lines written after it started, whole lines only, with app, slot and stream", async () => {
    const { dir, keeper, lines } = setUp(1_000_000, 3);
    const file = path.join(dir, "api.2.err.log");
    writeFileSync(file, "from an earlier run\n");
    writeFileSync(path.join(dir, "access.log"), "not a worker's\n");
    await keeper.start();
    keeper.stop();
    appendFileSync(file, "one\ntwo\npar");
    await keeper.check();
    appendFileSync(file, "tial\n");
    writeFileSync(path.join(dir, "web.0.out.log"), "new slot\n");
    await keeper.check();
    expect(lines).toEqual([
      { app: "api", slot: 2, stream: "err", text: "one" },
      { app: "api", slot: 2, stream: "err", text: "two" },
      { app: "api", slot: 2, stream: "err", text: "partial" },
      { app: "web", slot: 0, stream: "out", text: "new slot" },
    ]);
  });

  it("relays at most RELAY_BYTES of a file per check, newest last, and says how much it left out", async () => {
    const { dir, keeper, lines } = setUp(100 * RELAY_BYTES, 3);
    const file = path.join(dir, "api.0.out.log");
    await keeper.start();
    keeper.stop();
    const line = `${"x".repeat(99)}\n`;
    const count = (3 * RELAY_BYTES) / line.length;
    appendFileSync(file, line.repeat(count - 1) + "the last line\n");
    await keeper.check();
    const relayedBytes = lines.slice(1).reduce((sum, { text }) => sum + text.length + 1, 0);
    expect(lines[0]!.text).toMatch(/^\[tsgi-stack: \d+ bytes of output not shown here/);
    expect(relayedBytes).toBeLessThanOrEqual(RELAY_BYTES);
    expect(lines.at(-1)!.text).toBe("the last line");
  });

  it("rotates a file past its bound copytruncate-style and keeps `keep` rotated files", async () => {
    const { dir, keeper, mute } = setUp(1000, 2);
    mute();
    const file = path.join(dir, "api.0.out.log");
    await keeper.start();
    keeper.stop();
    for (const round of [1, 2, 3]) {
      appendFileSync(file, `round ${round}\n`.repeat(200));
      await keeper.check();
      expect(statSync(file).size).toBe(0);
    }
    expect(readFileSync(`${file}.1`, "utf8")).toMatch(/^round 3\n/);
    expect(readFileSync(`${file}.2`, "utf8")).toMatch(/^round 2\n/);
    expect(existsSync(`${file}.3`)).toBe(false);
    appendFileSync(file, "small\n");
    await keeper.check();
    expect(readFileSync(file, "utf8")).toBe("small\n");
  });

  it("relays what a rotated file held before it was emptied, then its new lines", async () => {
    const { dir, keeper, lines } = setUp(50, 1);
    const file = path.join(dir, "api.0.out.log");
    await keeper.start();
    keeper.stop();
    appendFileSync(file, `${"a".repeat(60)}\n`);
    await keeper.check();
    appendFileSync(file, "after\n");
    await keeper.check();
    expect(lines.map(({ text }) => text)).toEqual(["a".repeat(60), "after"]);
  });

  it("keeps what a worker appends while a large file is copied: rotation loses no line of a steady writer", async () => {
    const { dir } = setUp(1, 1);
    const file = path.join(dir, "api.0.out.log");
    writeFileSync(file, "");
    // A real writer with its own descriptor opened for appending, as a worker's stdout: a numbered line every millisecond.
    const writer = spawn(
      process.execPath,
      ["-e", `const fs = require("fs"); const fd = fs.openSync(process.argv[1], "a"); let n = 0;
        const timer = setInterval(() => fs.writeSync(fd, "line " + ++n + "\\n"), 1);
        process.on("SIGTERM", () => { clearInterval(timer); fs.writeSync(fd, "wrote " + n + "\\n"); process.exit(0); });
        fs.writeSync(fd, "ready\\n");`, file],
      { stdio: "ignore" },
    );
    // The writer's lines found in each rotated file (the filler left out).
    let kept = "";
    try {
      while (!readFileSync(file, "utf8").includes("ready")) await new Promise((resolve) => setTimeout(resolve, 10));
      // 32 MiB of filler makes each copy last milliseconds, during which the writer adds lines (plain copytruncate lost them).
      const filler = `${"f".repeat(127)}\n`.repeat(256 * 1024);
      for (let round = 0; round < 3; round++) {
        appendFileSync(file, filler);
        await rotate(file, 1);
        kept += readFileSync(`${file}.1`, "utf8").split("\n").filter((line) => !line.startsWith("f")).join("\n") + "\n";
      }
    } finally {
      writer.kill("SIGTERM");
      await once(writer, "exit");
    }
    const text = kept + readFileSync(file, "utf8");
    const written = Number(/^wrote (\d+)$/m.exec(text)![1]);
    const seen = new Set([...text.matchAll(/^line (\d+)$/gm)].map((match) => Number(match[1])));
    const missing = Array.from({ length: written }, (_, i) => i + 1).filter((n) => !seen.has(n));
    expect(written).toBeGreaterThan(10);
    // The one window left is the microseconds between the last read and the truncation: a line is lost there only rarely.
    expect(missing.length, `lines lost: ${missing.join(", ")}`).toBeLessThanOrEqual(1);
  });
});
