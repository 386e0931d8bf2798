/**
 * @module contract/units
 *
 * Durations and sizes as people write them in configs and flags: `30s`,
 * `500ms`, `2m`, `1h`; `10m` bytes is ambiguous, so sizes take `k`, `m`, `g`
 * (nginx's client_max_body_size style, powers of 1024) with an optional `b`.
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

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i;
/**
 * The strings parseDuration accepts, as a JSON Schema pattern (ECMA-262 without
 * flags, so the letter cases are spelled out): the config schema validates
 * with it, and editors check the file with it (issue #3).
 */
export const DURATION_PATTERN = "^\\d+(\\.\\d+)?\\s*([mM][sS]|[sSmMhHdD])?$";
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds in a duration like `30s`, `1.5m`, `250ms` or `30` (seconds). */
export function parseDuration(value: string | number, what = "duration"): number {
  if (typeof value === "number") {
    if (Number.isFinite(value) && value >= 0) return value * 1000;
    throw new UnitError(what, value, "duration such as 30s, 500ms or 2m");
  }
  const match = DURATION.exec(value.trim());
  if (!match) throw new UnitError(what, value, "duration such as 30s, 500ms or 2m");
  return Math.round(Number(match[1]) * DURATION_MS[(match[2] ?? "s").toLowerCase()]!);
}

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
