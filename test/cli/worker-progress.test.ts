/**
 * The progress lines of `reload`, `restart`, `scale` and `up -d`: what changed
 * between two reads of the workers, and the polling around a request.
 */
import { describe, expect, it } from "vitest";
import { readyLine, type WorkerSnapshot, withWorkerProgress, workerChanges } from "../../src/cli/worker-progress.ts";

const w = (slot: number, pid: number, state: string, uptime = 0, lastError?: string): WorkerSnapshot => ({
  app: "web",
  slot,
  pid,
  state,
  uptime,
  ...(lastError ? { lastError } : {}),
});

describe("worker progress", () => {
  it("says each worker that came, changed or went, once", () => {
    const before = [w(0, 100, "ready", 9000), w(1, 101, "ready", 9000)];
    const after = [w(0, 100, "stopping"), w(1, 101, "ready", 9500), w(2, 0, "starting"), w(3, 203, "ready", 850)];
    expect(workerChanges(before, after)).toEqual(["web.0 stopping (pid 100)", "web.2 starting", "web.3 ready (pid 203, 850 ms)"]);
    expect(workerChanges(after, [w(1, 101, "ready", 9700), w(3, 203, "ready", 1100)])).toEqual(["web.0 gone (pid 100)", "web.2 gone"]);
    expect(workerChanges([w(1, 101, "ready")], [w(1, 0, "down", 0, "exited with code 1 after 300 ms")])).toEqual(["web.1 down: exited with code 1 after 300 ms"]);
  });

  it("times a ready worker by its own uptime, when the status has that pid", () => {
    expect(readyLine({ app: "web", slot: 3, pid: 203 }, [w(3, 203, "ready", 850)])).toBe("web.3 ready (pid 203, 850 ms)");
    expect(readyLine({ app: "web", slot: 3, pid: 203 }, [])).toBe("web.3 ready (pid 203)");
  });

  it("prints the changes seen while a request runs, and the last one after it ends", async () => {
    const reads: WorkerSnapshot[][] = [[w(0, 100, "ready", 5000)], [w(0, 100, "ready", 5000), w(1, 0, "starting")], [w(0, 100, "stopping"), w(1, 201, "ready", 700)], [w(1, 201, "ready", 900)]];
    let index = 0;
    const printed: string[] = [];
    let finish!: (value: string) => void;
    const work = new Promise<string>((resolve) => (finish = resolve));
    const result = withWorkerProgress(() => work, {
      read: async () => {
        const read = reads[Math.min(index, reads.length - 1)]!;
        index += 1;
        if (index === reads.length - 1) finish("done"); // the request ends with one read to go
        return read;
      },
      print: (line) => printed.push(line),
      intervalMs: 5,
    });
    expect(await result).toBe("done");
    expect(printed).toEqual(["web.1 starting", "web.0 stopping (pid 100)", "web.1 ready (pid 201, 700 ms)", "web.0 gone (pid 100)"]);
  });

  it("fails as the request fails; a read that fails is skipped", async () => {
    const printed: string[] = [];
    const failing = withWorkerProgress(() => Promise.reject(new Error("refused")), { read: () => Promise.reject(new Error("busy")), print: (line) => printed.push(line), intervalMs: 5 });
    await expect(failing).rejects.toThrow("refused");
    expect(printed).toEqual([]);
  });
});
