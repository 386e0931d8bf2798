/**
 * @module cli/colour
 *
 * Whether the CLI's output is coloured, and the few colours it uses. The
 * styling itself is node:util's styleText (Node ≥ 20.12, below the package's
 * floor of 20.19): no dependency for four colours. styleText's own check of
 * the stream differs between Node versions (20.19 has none), so the decision
 * is made here, once, by the usual conventions: NO_COLOR set (to anything)
 * turns colour off, FORCE_COLOR (not "0" or "false") turns it on even into a
 * pipe, otherwise a terminal that says it has colours gets them and a pipe
 * or a file gets none. Colour only ever repeats what the words say: output
 * without it must read the same.
 */
import { styleText } from "node:util";

/** The colours the CLI means something by: good, bad, in between, and less important. */
export type Tone = "good" | "bad" | "warn" | "dim";

const FORMATS: Record<Tone, Parameters<typeof styleText>[0]> = { good: "green", bad: "red", warn: "yellow", dim: "dim" };

/** The stream the output goes to, as far as colour is concerned (process.stdout, or a fake in tests). */
export interface ColourTarget {
  isTTY?: boolean;
  hasColors?: () => boolean;
}

/** True when output to `stream` is to be coloured, given the environment `env`. */
export function colourWanted(stream: ColourTarget, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== "0" && force !== "false";
  if (!stream.isTTY) return false;
  // A terminal: Node's own reading of TERM and the colour depth (TERM=dumb has none).
  return stream.hasColors ? stream.hasColors() : true;
}

/** Paints text in a tone, or leaves it as it is. */
export type Paint = (tone: Tone, text: string) => string;

export const noColour: Paint = (_tone, text) => text;

export const colour: Paint = (tone, text) => (text === "" ? text : styleText(FORMATS[tone], text, { validateStream: false }));

/** The painter for `stream`: colours when colourWanted says so, plain text otherwise. */
export function painterFor(stream: ColourTarget, env: NodeJS.ProcessEnv = process.env): Paint {
  return colourWanted(stream, env) ? colour : noColour;
}

