/**
 * @module contract/units
 *
 * Durations and sizes as people write them in configs and flags: `30s`,
 * `500ms`, `2m`, `1h`, `1d`, and parts combined as nginx writes them
 * (`1m30s`, `1h 30m`); `10m` bytes is ambiguous, so sizes take `k`, `m`, `g`
 * (nginx's client_max_body_size style, powers of 1024), optionally followed
 * by `b` or `ib` (`256MB`, `1GiB` are the same multiples).
 * A bare number is seconds for durations (Gunicorn's --timeout) and bytes for
 * sizes. Pure functions: they throw a UnitError naming the bad value.
 *
 * In the contract because both sides of it read these: the config schema
 * (`timeout: 30s`) and `serve`'s flags (`--timeout 30s`), through the worker
 * settings table (contract/worker-settings.ts).
 */
import { TsgiStackError } from "../errors.ts";

/** A duration or size that does not parse; `at` is the key or flag it was given for. */
export class UnitError extends TsgiStackError {
  static readonly code = "TSGI_ERR_CONFIG_UNIT";

  constructor(what: string, value: unknown, expected: string) {
    super(`${what}: ${JSON.stringify(value)} is not a ${expected}`, { at: what });
  }
}

/** One part of a duration: a number and its unit (ms, s, m, h, d; any case). */
const DURATION_PART = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*/giy;
const BARE_SECONDS = /^\d+(?:\.\d+)?$/;
/**
 * The strings parseDuration accepts, as a JSON Schema pattern (ECMA-262 without
 * flags, so the letter cases are spelled out): the config schema validates
 * with it, and editors check the file with it (issue #3). A bare number, or
 * one or more number-and-unit parts as nginx combines them (`1m30s`, `1h 30m`).
 */
export const DURATION_PATTERN = "^\\d+(\\.\\d+)?$|^(\\d+(\\.\\d+)?\\s*([mM][sS]|[sSmMhHdD])\\s*)*\\d+(\\.\\d+)?\\s*([mM][sS]|[sSmMhHdD])$";
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_EXPECTED = "duration such as 30s, 500ms, 2m or 1m30s";

/** Milliseconds in a duration like `30s`, `1.5m`, `250ms`, `1m30s`, `1h 30m` or `30` (seconds). */
export function parseDuration(value: string | number, what = "duration"): number {
  if (typeof value === "number") {
    if (Number.isFinite(value) && value >= 0) return value * 1000;
    throw new UnitError(what, value, DURATION_EXPECTED);
  }
  const text = value.trim();
  if (BARE_SECONDS.test(text)) return Math.round(Number(text) * 1000);
  let ms = 0;
  let at = 0;
  DURATION_PART.lastIndex = 0;
  for (let part = DURATION_PART.exec(text); part; part = DURATION_PART.exec(text)) {
    ms += Number(part[1]) * DURATION_MS[part[2]!.toLowerCase()]!;
    at = DURATION_PART.lastIndex;
  }
  if (at === 0 || at !== text.length) throw new UnitError(what, value, DURATION_EXPECTED);
  return Math.round(ms);
}

/**
 * A whole number of milliseconds as the shortest duration nginx and Compose
 * both read back exactly: `30s` when whole seconds, else `1500ms`.
 */
export function formatDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/**
 * The longest duration Node's timers take (2^31 - 1 ms, about 24.8 days):
 * a longer one would fire at once (as 1 ms), so that `health.interval: 30d`
 * checks 500 times a second and `graceful_timeout: 30d` drops requests
 * immediately. The config refuses longer ones (config/checks.ts), and so do
 * the worker's flags (parseDurationFlag).
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

const SIZE = /^(\d+(?:\.\d+)?)\s*([kmg]?)i?b?$/i;
/** The strings parseSize accepts, as a JSON Schema pattern (see DURATION_PATTERN). */
export const SIZE_PATTERN = "^\\d+(\\.\\d+)?\\s*[kKmMgG]?[iI]?[bB]?$";
const SIZE_BYTES: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Bytes in a size like `10m`, `256M`, `512k`, `1g` or `1024`. */
export function parseSize(value: string | number, what = "size"): number {
  if (typeof value === "number") {
    if (Number.isInteger(value) && value >= 0) return value;
    throw new UnitError(what, value, "size such as 10m, 256M or 512k");
  }
  const match = SIZE.exec(value.trim());
  if (!match) throw new UnitError(what, value, "size such as 10m, 256M or 512k");
  return Math.round(Number(match[1]) * SIZE_BYTES[match[2]!.toLowerCase()]!);
}
