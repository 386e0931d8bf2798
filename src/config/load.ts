/**
 * @module config/load
 *
 * YAML file -> a validated, normalized, deep-frozen StackConfig, or EVERY
 * error in it, each located `file:line:column` with its key path (issue #3).
 * The stages, in order:
 *
 *   1. parse      the YAML, keeping positions (syntax errors stop here)
 *   2. expand     `${VAR}` / `${VAR:-default}` in every value (env.ts)
 *   3. provision  the schema's defaults (defaults.ts)
 *   4. validate   the schema (messages.ts) and the cross-field checks (checks.ts)
 *   5. normalize  units, absolute paths, deep-freeze (normalize.ts)
 *
 * parseConfig() is pure: text and the environment in, a result out; the file
 * system is reached only through the Probe it is given. loadConfig() is the
 * one function here that touches the disk: it reads the file and probes paths.
 * A bad file is a result, never an exception, so a reload can keep the old
 * config running and report.
 */
import { closeSync, openSync, readFileSync, statSync } from "node:fs";
import nodePath from "node:path";
import { checkProblems, type FileInspector } from "./checks.ts";
import { applyDefaults } from "./defaults.ts";
import { expandEnv } from "./env.ts";
import { ConfigCheckError, ConfigEnvError, type ConfigError, ConfigSchemaError, ConfigUnreadable, ConfigYamlError, type PathSegment, formatPath } from "./errors.ts";
import { schemaProblems } from "./messages.ts";
import { normalize } from "./normalize.ts";
import type { Probe } from "./paths.ts";
import { type AnySchema, type StackConfig, StackConfigSchema } from "./schema.ts";
import { type YamlSource, badAliases, locate, parseYaml } from "./yaml-source.ts";

export type { AddressConfig, AppConfig, HealthConfig, ProxyConfig, RestartConfig, RouteConfig, StackConfig, TlsConfig } from "./schema.ts";
export { ConfigError } from "./errors.ts";

/** The file commands read without `-c`, in the current directory. */
export { DEFAULT_CONFIG_FILE } from "./paths.ts";

export type LoadResult = { ok: true; config: StackConfig } | { ok: false; errors: ConfigError[] };

export type Environment = Readonly<Record<string, string | undefined>>;

export interface ParseOptions {
  /** The file's name as the user gave it: errors start with it. */
  file: string;
  /** The file's folder, absolute: relative paths in the config start there. */
  dir: string;
  env?: Environment;
  probe: Probe;
  /** Whether a file can be read whole (error pages); absent: only `probe` is asked. */
  inspectFile?: FileInspector;
}

interface Problem {
  segments: PathSegment[];
  message: string;
}

/** Which stage found a problem: its class, hence its code (config/errors.ts). */
type Stage = typeof ConfigYamlError | typeof ConfigEnvError | typeof ConfigSchemaError | typeof ConfigCheckError;
type StagedProblem = Problem & { stage: Stage };

const staged = (stage: Stage, problems: readonly Problem[]): StagedProblem[] => problems.map((problem) => ({ ...problem, stage }));

/** True when `outer` is `inner` or one of its ancestors. */
function encloses(outer: readonly PathSegment[], inner: readonly PathSegment[]): boolean {
  return outer.length <= inner.length && outer.every((segment, i) => String(segment) === String(inner[i]));
}

/** True when one path is the other or inside it. */
const overlaps = (a: readonly PathSegment[], b: readonly PathSegment[]) => encloses(a, b) || encloses(b, a);

function toErrors(file: string, source: YamlSource, problems: StagedProblem[]): ConfigError[] {
  return problems
    .map((problem) => ({ problem, at: locate(source, problem.segments) }))
    .sort((a, b) => a.at.line - b.at.line || a.at.column - b.at.column)
    .map(({ problem, at }) => new problem.stage(file, at.line, at.column, formatPath(problem.segments), problem.message));
}

/** Config text -> result. Pure but for `probe` (which tells whether module files, folders and TLS files exist). */
export function parseConfig(text: string, options: ParseOptions): LoadResult {
  const { file, dir, probe } = options;
  const { source, errors: syntax } = parseYaml(text);
  if (syntax.length > 0) {
    return { ok: false, errors: syntax.map((error) => new ConfigYamlError(file, error.line, error.column, error.key, `YAML: ${error.message}`)) };
  }

  // toJS() would throw on the first alias without an anchor: report them all, with positions, and stop.
  const aliases = badAliases(source).map(({ name, segments }) => ({ segments, message: `the alias *${name} has no anchor &${name} before it` }));
  if (aliases.length > 0) return { ok: false, errors: toErrors(file, source, staged(ConfigYamlError, aliases)) };
  const early: Problem[] = expandEnv(source, options.env ?? process.env);

  let raw: unknown;
  try {
    raw = source.doc.toJS();
  } catch (error) {
    return { ok: false, errors: [new ConfigYamlError(file, 1, 1, "", `YAML: ${(error as Error).message}`)] };
  }

  const data = applyDefaults(StackConfigSchema as unknown as AnySchema, raw ?? {});
  // A value whose ${VAR} failed is already reported: its schema error would only repeat it.
  const schema = schemaProblems(StackConfigSchema, data).filter((problem) => !early.some((e) => overlaps(e.segments, problem.segments)));
  const faulted = [...early, ...schema];
  const checks = checkProblems(raw, {
    dir,
    probe,
    ...(options.inspectFile ? { inspectFile: options.inspectFile } : {}),
    faulted: (segments) => faulted.some((problem) => overlaps(problem.segments, segments)),
    faultedAt: (segments) => faulted.some((problem) => encloses(problem.segments, segments)),
  });

  const problems = [...staged(ConfigEnvError, early), ...staged(ConfigSchemaError, schema), ...staged(ConfigCheckError, checks)];
  if (problems.length > 0) return { ok: false, errors: toErrors(file, source, problems) };
  return { ok: true, config: normalize(data, dir, probe) };
}

/** The real file system, for parseConfig's probe. */
const diskProbe: Probe = (absolutePath) => {
  try {
    const stats = statSync(absolutePath);
    return stats.isDirectory() ? "dir" : stats.isFile() ? "file" : undefined;
  } catch {
    return undefined;
  }
};

/** The real file system, for the checks that read a file whole (error pages): too large, or not readable. */
const diskInspector: FileInspector = (absolutePath, maxBytes) => {
  try {
    const { size } = statSync(absolutePath);
    if (size > maxBytes) return `${absolutePath} is ${size} bytes; at most ${maxBytes} (1 MiB)`;
    closeSync(openSync(absolutePath, "r"));
    return undefined;
  } catch (error) {
    return unreadable(error, absolutePath);
  }
};

function unreadable(error: unknown, absolute: string): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return `no such file: ${absolute}`;
  if (code === "EISDIR") return `a folder, not a config file: ${absolute}`;
  if (code === "EACCES") return `permission denied: ${absolute}`;
  return `cannot read ${absolute}: ${(error as Error).message}`;
}

/**
 * Reads and loads a config file. `file` is resolved from the current
 * directory; paths inside the file are resolved from the file's folder.
 */
export function loadConfig(file: string, env: Environment = process.env): LoadResult {
  const absolute = nodePath.resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, "utf8");
  } catch (error) {
    return { ok: false, errors: [new ConfigUnreadable(file, 0, 0, "", unreadable(error, absolute))] };
  }
  return parseConfig(text, { file, dir: nodePath.dirname(absolute), env, probe: diskProbe, inspectFile: diskInspector });
}

/** Where the stack keeps its state (pm2's home, sockets, logs, pid): absolute. */
export function configStateDir(config: StackConfig): string {
  return config.state_dir;
}
