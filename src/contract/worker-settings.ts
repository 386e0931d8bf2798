/**
 * @module contract/worker-settings
 *
 * The one table of a gateway worker's settings, after Gunicorn's `Setting`
 * classes: for each, its `serve` flag, its parser, its default, its unit, its
 * help and, when the YAML config sets it, its config key and description.
 * Everything else is derived from this table:
 *
 *   - `serve`'s flags, their help and defaults, and the parsing of their values
 *     (cli/commands/serve.ts);
 *   - the arguments the supervisor passes to each worker (supervisor/launch.ts),
 *     written with the same kind that parses them back;
 *   - the app keys of the config schema, with their description and default
 *     (config/schema.ts), and the pool spec the stack builds from them
 *     (stack/stack.ts).
 *
 * So a new worker setting is one row here, plus what the worker does with it
 * (gateway/worker.ts). The values are numbers: counts, and durations in ms.
 */
import { wholeSeconds, WORKER_KEEP_ALIVE_MS } from "./keep-alive.ts";
import { MAX_DURATION_MS, parseDuration } from "./units.ts";

/** A flag's value that does not parse: the message names the flag and the value. */
export class SettingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SettingError";
  }
}

/** `--max-requests "x": expected a whole number`: a count, such as a number of requests or processes. */
export function parseCount(text: string, flag: string): number {
  if (!/^\d+$/.test(text)) throw new SettingError(`${flag} ${JSON.stringify(text)}: expected a whole number`);
  return Number(text);
}

/** A duration in ms, written as people write it (`30s`, `500ms`, `2m`; a bare number is seconds). */
export function parseDurationFlag(text: string, flag: string): number {
  let ms: number;
  try {
    ms = parseDuration(text, flag);
  } catch (error) {
    throw new SettingError((error as Error).message);
  }
  if (ms > MAX_DURATION_MS) throw new SettingError(`${flag} ${JSON.stringify(text)}: longer than Node's timers allow (at most 24d)`);
  return ms;
}

/** How a kind of setting is read from a flag and written back onto a command line. */
export interface SettingKind {
  /** What the value counts, for the help and docs. */
  readonly unit: "count" | "ms";
  /** The value's placeholder in `--help`. */
  readonly metavar: string;
  readonly parse: (text: string, flag: string) => number;
  /** Text that `parse` reads back as exactly `value`. */
  readonly format: (value: number) => string;
}

export const SETTING_KINDS = {
  count: { unit: "count", metavar: "<n>", parse: parseCount, format: (value) => String(value) },
  // Milliseconds, which parseDuration reads exactly; "0" (disabled) is written as people write it.
  duration: { unit: "ms", metavar: "<duration>", parse: parseDurationFlag, format: (ms) => (ms > 0 ? `${Math.round(ms)}ms` : "0") },
} as const satisfies Record<string, SettingKind>;

export type SettingKindName = keyof typeof SETTING_KINDS;

export interface WorkerSetting {
  /** The field of the worker's options (gateway/worker.ts) and of the supervisor's pool spec that holds the value. */
  readonly key: string;
  readonly flag: `--${string}`;
  readonly kind: SettingKindName;
  /** The default as written on the command line; the config's default is the same value. */
  readonly default: string;
  /** One line for `serve --help`. */
  readonly help: string;
  /** The app key in the YAML config, for a setting the config sets (and the supervisor then passes to every worker). */
  readonly configKey?: string;
  /** The config key's description in the schema and docs/config.md. */
  readonly description?: string;
}

export const WORKER_SETTINGS = [
  {
    key: "maxRequests",
    flag: "--max-requests",
    kind: "count",
    default: "0",
    help: "recycle a worker after this many requests (0: never)",
    configKey: "max_requests",
    description: "A worker is recycled after serving this many requests, like Gunicorn's --max-requests. 0: never.",
  },
  {
    key: "maxRequestsJitter",
    flag: "--max-requests-jitter",
    kind: "count",
    default: "0",
    help: "add a random 0..n to --max-requests per worker",
    configKey: "max_requests_jitter",
    description: "Adds a random 0..N to `max_requests` per worker, so that workers do not all recycle at once.",
  },
  {
    key: "timeoutMs",
    flag: "--timeout",
    kind: "duration",
    default: "30s",
    help: "a request running longer makes its worker leave for replacement (0: never)",
    configKey: "timeout",
    description: "A request running longer kills and replaces its worker. 0: never.",
  },
  {
    key: "gracefulTimeoutMs",
    flag: "--graceful-timeout",
    kind: "duration",
    default: "30s",
    help: "how long a stopping worker waits for in-flight requests",
    configKey: "graceful_timeout",
    description: "How long a stopping worker may finish its in-flight requests before it is killed.",
  },
  {
    // Not a config key: the proxy's upstream idle bound is derived from it instead (contract/keep-alive.ts).
    key: "keepAliveTimeoutMs",
    flag: "--keep-alive",
    kind: "duration",
    default: wholeSeconds(WORKER_KEEP_ALIVE_MS),
    help: "idle keep-alive connection lifetime",
  },
] as const satisfies readonly WorkerSetting[];

type Row = (typeof WORKER_SETTINGS)[number];
/** A row the config sets, and the supervisor passes on. */
export type ConfiguredSetting = Extract<Row, { configKey: string }>;

export type WorkerSettingKey = Row["key"];
/** Every worker setting's value: what the worker's options hold. */
export type WorkerSettingValues = { [K in WorkerSettingKey]: number };
/** The values the config sets: what the supervisor's pool spec holds. */
export type ConfiguredSettingValues = { [K in ConfiguredSetting["key"]]: number };
export type SettingConfigKey = ConfiguredSetting["configKey"];

/** The rows the config sets, in table order. */
export const CONFIGURED_SETTINGS: readonly ConfiguredSetting[] = WORKER_SETTINGS.filter(
  (setting): setting is ConfiguredSetting => "configKey" in setting,
);

/** Reads one flag's value with its own kind's parser; a SettingError names the flag. */
export function parseSetting(setting: WorkerSetting, text: string): number {
  return SETTING_KINDS[setting.kind].parse(text, setting.flag);
}

/** Every setting's value from `serve`'s flag values (by setting key); a flag not given takes the table's default. */
export function parseSettings(text: (setting: Row) => string | undefined): WorkerSettingValues {
  const values = {} as WorkerSettingValues;
  for (const setting of WORKER_SETTINGS) values[setting.key] = parseSetting(setting, text(setting) ?? setting.default);
  return values;
}

/** The flags that hand the configured values to a worker: `--max-requests 1000 --timeout 30000ms …`, in table order. */
export function settingArgs(values: ConfiguredSettingValues): string[] {
  return CONFIGURED_SETTINGS.flatMap((setting) => [setting.flag, SETTING_KINDS[setting.kind].format(values[setting.key])]);
}

/** The configured values from a loaded app config (keys as the file has them, values already in their unit). */
export function settingsFromConfig(read: (configKey: SettingConfigKey) => number): ConfiguredSettingValues {
  const values = {} as ConfiguredSettingValues;
  for (const setting of CONFIGURED_SETTINGS) values[setting.key] = read(setting.configKey);
  return values;
}
