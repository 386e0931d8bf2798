/**
 * isAlive on real processes: a running one, one that exited and was reaped,
 * and a zombie (exited, its parent not reaping it), which counts as gone
 * although a signal 0 still reaches it.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { afterAll, describe, expect, it } from "vitest";
import { isAlive } from "../../src/contract/pids.ts";

const started: number[] = [];
afterAll(() => {
  for (const pid of started) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

describe("isAlive", () => {
  it("is true for a running process and false once it has exited and been reaped", async () => {
    const child = spawn("sleep", ["5"], { stdio: "ignore" });
    started.push(child.pid!);
    expect(isAlive(child.pid!)).toBe(true);
    child.kill("SIGTERM");
    await once(child, "exit");
    expect(isAlive(child.pid!)).toBe(false);
  });

  it("is false for a zombie, which a signal 0 still reaches", async () => {
    // The shell starts a child that exits 0.3 s later, then becomes `sleep`, which never reaps it: a zombie for 5 s.
    // (A child that exited at once was sometimes reaped by the shell itself before its exec: then there was no zombie.)
    const parent = spawn("sh", ["-c", "sleep 0.3 & echo $!; exec sleep 5"], { stdio: ["ignore", "pipe", "ignore"] });
    started.push(parent.pid!);
    const [line] = (await once(parent.stdout!, "data")) as [Buffer];
    const zombie = Number(line.toString().trim());
    // Until the child has exited it runs; then it stays a zombie.
    const deadline = Date.now() + 2000;
    while (isAlive(zombie) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(() => process.kill(zombie, 0)).not.toThrow();
    expect(isAlive(zombie)).toBe(false);
    expect(isAlive(parent.pid!)).toBe(true);
    parent.kill("SIGKILL");
    await once(parent, "exit");
  });

  it("is false for no pid at all", () => {
    expect(isAlive(0)).toBe(false);
  });
});
