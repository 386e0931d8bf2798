/**
 * @module cli/status-watch
 *
 * `tsgi-stack status --watch`: the table again every interval, as `watch
 * tsgi-stack status` would show it, until Ctrl-C (which exits 0: stopping to
 * watch is not a failure). On a terminal each frame replaces the last in
 * place (the screen cleared once, then cursor home, each line cleared to its end, the rest of the screen
 * cleared), so the table does not scroll or flicker; into a pipe or a file
 * each frame follows the last after a blank line, with no escapes, so a log
 * of it reads as a series of `status` outputs. A stack that stops answering
 * is said in the frame, and watched for until it answers again.
 */

const HOME = "\u001b[H";
const CLEAR_SCREEN = "\u001b[2J";
const CLEAR_LINE_END = "\u001b[K";
const CLEAR_BELOW = "\u001b[J";

export interface WatchOptions {
  /** One frame's text: the rendered status, or why there is none (the stack is not running). */
  frame: () => Promise<string>;
  /** Between two frames. */
  intervalMs: number;
  /** Where frames go (process.stdout). */
  out: { write(text: string): unknown };
  /** Redraw in place (a terminal), or append (a pipe). */
  inPlace: boolean;
  /** Resolves to stop watching (Ctrl-C). */
  stop: Promise<void>;
}

/** A frame as written: in place on a terminal, appended after a blank line otherwise. */
export function frameText(text: string, inPlace: boolean, first: boolean): string {
  if (!inPlace) return `${first ? "" : "\n"}${text}\n`;
  return `${first ? CLEAR_SCREEN : ""}${HOME}${text.split("\n").map((line) => `${line}${CLEAR_LINE_END}`).join("\n")}\n${CLEAR_BELOW}`;
}

/** Writes a frame every interval until `stop` resolves. */
export async function watchStatus(options: WatchOptions): Promise<void> {
  const { frame, intervalMs, out, inPlace, stop } = options;
  let stopped = false;
  void stop.then(() => (stopped = true));
  let first = true;
  while (!stopped) {
    const text = await frame();
    if (stopped) break;
    out.write(frameText(text, inPlace, first));
    first = false;
    // The wait is cut short by `stop`, and its timer cleared: a pending one would keep the process up after Ctrl-C.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([stop, new Promise((resolve) => (timer = setTimeout(resolve, intervalMs)))]);
    clearTimeout(timer);
  }
}
