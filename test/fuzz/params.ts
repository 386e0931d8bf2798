/**
 * @module test/fuzz/params
 *
 * The one place the fuzzers take their seed and size from, so that every
 * run is reproducible and the long run is the same code with bigger numbers:
 *
 *   FUZZ_SEED=123 FUZZ_RUNS=100000 npx vitest run test/fuzz
 *
 * fast-check prints the seed and the shrunk counterexample's path when a
 * property fails; FUZZ_SEED + FUZZ_PATH replay exactly that case. The
 * socket-level fuzzers (which do not run through fc.assert) draw their
 * inputs from fast-check's generators with the same seed, so they replay the
 * same way.
 */
import fc from "fast-check";

/** The seed of the normal suite: fixed, so a failure in CI is a failure on every machine. */
export const DEFAULT_SEED = 20261206;

function envNumber(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value)) throw new Error(`${name}=${raw}: expected an integer`);
  return value;
}

/** The seed in use: FUZZ_SEED, else the fixed default. */
export function fuzzSeed(): number {
  return envNumber("FUZZ_SEED") ?? DEFAULT_SEED;
}

/**
 * How many inputs: the file's own variable when set (`only`, e.g. FUZZ_DIFF_RUNS for a
 * fuzzer whose input costs a round trip through two proxies), else FUZZ_RUNS, else the
 * file's default (small enough for the normal suite).
 */
export function fuzzRuns(defaultRuns: number, only?: string): number {
  return (only === undefined ? undefined : envNumber(only)) ?? envNumber("FUZZ_RUNS") ?? defaultRuns;
}

/**
 * fc.assert's parameters: the seed, the run count, and FUZZ_PATH when
 * replaying one reported counterexample. `scale` lets a file whose property
 * is much costlier than the others run a fraction of FUZZ_RUNS.
 */
export function fuzzParameters<T>(defaultRuns: number, scale = 1): fc.Parameters<T> {
  const path = process.env.FUZZ_PATH;
  return {
    seed: fuzzSeed(),
    numRuns: Math.max(1, Math.round(fuzzRuns(defaultRuns) * scale)),
    ...(path ? { path } : {}),
    // fast-check prints the seed, the path and the shrunk input on failure (not every shrink step: verbose 0).
  };
}

/** How many predicate calls run between two turns of the event loop. */
const CALLS_PER_TURN = 200;

/**
 * fc.property, but yielding to the event loop every CALLS_PER_TURN inputs:
 * a synchronous property over 100k inputs would hold the test worker for
 * minutes, and vitest gives up on a worker that does not answer its RPC in
 * 60 s. Use with `return fc.assert(yielding(...), fuzzParameters(n))`; the
 * seed, path and shrinking are fast-check's as with fc.property.
 */
export function yielding<Ts extends [unknown, ...unknown[]]>(
  ...args: [...arbitraries: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> }, predicate: (...values: Ts) => void]
): fc.IAsyncPropertyWithHooks<Ts> {
  const predicate = args[args.length - 1] as (...values: Ts) => void;
  const arbitraries = args.slice(0, -1) as unknown as { [K in keyof Ts]: fc.Arbitrary<Ts[K]> };
  let calls = 0;
  return fc.asyncProperty<Ts>(...arbitraries, async (...values: Ts) => {
    if (++calls % CALLS_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve));
    predicate(...values);
  });
}

/**
 * `count` values of `arbitrary`, drawn with the fuzz seed: for the socket
 * fuzzers, which send inputs in their own loop (and report the index of a
 * failing one; the same seed gives the same list).
 */
export function sampleInputs<T>(arbitrary: fc.Arbitrary<T>, count: number): T[] {
  return fc.sample(arbitrary, { seed: fuzzSeed(), numRuns: count });
}

/** An input as it can be pasted into a regression test: hex and latin1 JSON. */
export function describeBytes(bytes: Uint8Array): string {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return `hex ${buffer.toString("hex")}\nlatin1 ${JSON.stringify(buffer.toString("latin1"))}`;
}
