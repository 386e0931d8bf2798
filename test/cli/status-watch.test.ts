/**
 * `status --watch`: frames drawn in place on a terminal, appended after a
 * blank line into a pipe, until stopped.
 */
import { describe, expect, it } from "vitest";
import { frameText, watchStatus } from "../../src/cli/status-watch.ts";

describe("status --watch", () => {
  it("redraws in place on a terminal: the screen cleared once, then cursor home and each line cleared to its end", () => {
    expect(frameText("a\nb", true, true)).toBe("\u001b[2J\u001b[Ha\u001b[K\nb\u001b[K\n\u001b[J");
    expect(frameText("a\nb", true, false)).toBe("\u001b[Ha\u001b[K\nb\u001b[K\n\u001b[J");
  });

  it("appends into a pipe, a blank line between frames and no escapes, until stopped", async () => {
    let written = "";
    let frames = 0;
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    await watchStatus({
      frame: async () => {
        frames += 1;
        if (frames === 3) stop();
        return `frame ${frames}`;
      },
      intervalMs: 1,
      out: { write: (text: string) => (written += text) },
      inPlace: false,
      stop: stopped,
    });
    expect(written).toBe("frame 1\n\nframe 2\n");
  });
});
