/**
 * @module test/reliability/bounds
 *
 * The two sizes of the reliability suite. `npm run reliability` sets
 * RELIABILITY_LONG=1 and every test runs at the matrix's full bounds (60 s of
 * load at 200 req/s, 10 reloads, ...). Without it — the normal `npm test` — the
 * same tests run shorter, so that the normal suite stays quick on two cores
 * while still exercising every fault for real.
 *
 * The harness limits hold in both: at most 60 s of load, 200 req/s and 500
 * sockets per test, everything on 127.0.0.1.
 */
export const LONG = process.env.RELIABILITY_LONG === "1";

/** `long` under RELIABILITY_LONG=1, else `short`. */
export function bound<T>(long: T, short: T): T {
  return LONG ? long : short;
}

/** How to run one file again as the report asks: the command, with the env that sized it. */
export function reproduce(file: string): string {
  return `${LONG ? "RELIABILITY_LONG=1 " : ""}npx vitest run ${file} --testTimeout=30000 --hookTimeout=30000 (after npm run build)`;
}

/** The harness's caps, asserted by the load helpers so that no test exceeds them by mistake. */
export const CAPS = { loadSeconds: 60, rate: 200, sockets: 500 } as const;
