/**
 * @module config/errors
 *
 * One error in a config file, located the way compilers locate theirs, so that
 * editors and terminals can jump to it (issue #3):
 *
 *   config.yaml:12:5 apps.hello.instances: expected a whole number >= 1, got "two"
 *
 * `line`/`column` are 1-based and point at the key of the offending entry (or
 * at the list item), and 0 when the error is about the file as a whole (it is
 * missing). `path` is the key path in the file (`apps.hello.routes[0].path`),
 * empty for the document itself. `message` is the bare problem; `format()`
 * the located line. The loader collects every error rather than throwing the
 * first: these are returned as data (and are catalog errors, src/errors.ts,
 * so each carries a code for the stage that found it).
 *
 * The CONFIG group of the catalog is stated here: the located errors, the
 * error thrown when a command cannot go on with the file (InvalidConfigFile,
 * ConfigFileNotFound), and a bad duration or size (contract/units.ts).
 */
import { errorGroup, TsgiStackError } from "../errors.ts";
import { UnitError } from "../contract/units.ts";

export type PathSegment = string | number;

/** A problem in a config file, located; the subclasses say which stage of the load found it. */
export class ConfigError extends TsgiStackError {
  static readonly code: string = "TSGI_ERR_CONFIG_INVALID";

  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly path: string,
    override readonly message: string,
  ) {
    super(message, { at: line > 0 ? `${file}:${line}:${column}` : file });
  }

  /** `file:line:column path: message`, leaving out what is unknown. */
  format(): string {
    const where = this.line > 0 ? `${this.file}:${this.line}:${this.column}` : this.file;
    return this.path ? `${where} ${this.path}: ${this.message}` : `${where}: ${this.message}`;
  }

  override toString(): string {
    return this.format();
  }
}

/** The file cannot be read: missing, a folder, not permitted. */
export class ConfigUnreadable extends ConfigError {
  static override readonly code = "TSGI_ERR_CONFIG_UNREADABLE";
}

/** The file is not YAML (a syntax error, an alias with no anchor). */
export class ConfigYamlError extends ConfigError {
  static override readonly code = "TSGI_ERR_CONFIG_YAML";
}

/** A `${VAR}` in a value is unset with no default, or malformed. */
export class ConfigEnvError extends ConfigError {
  static override readonly code = "TSGI_ERR_CONFIG_ENV";
}

/** A key the schema does not know, or a value of the wrong type, form or range. */
export class ConfigSchemaError extends ConfigError {
  static override readonly code = "TSGI_ERR_CONFIG_SCHEMA";
}

/** A value well-formed on its own but wrong with the rest of the file or the disk (a missing module, two apps on one route). */
export class ConfigCheckError extends ConfigError {
  static override readonly code = "TSGI_ERR_CONFIG_CHECK";
}

/** A command (`up`, `logs`) cannot go on: the file has errors, each already printed. */
export class InvalidConfigFile extends TsgiStackError {
  static readonly code = "TSGI_ERR_CONFIG_FILE_INVALID";

  constructor(
    message: string,
    readonly file: string,
    readonly errors: readonly ConfigError[],
  ) {
    super(message, { at: file });
  }
}

/** No config file where a command looked: `-c FILE` names none, or there is no tsgi.yaml here. */
export class ConfigFileNotFound extends TsgiStackError {
  static readonly code = "TSGI_ERR_CONFIG_FILE_NOT_FOUND";

  constructor(
    message: string,
    readonly file: string,
  ) {
    super(message, { at: file });
  }
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `["apps", "hello", "routes", 0, "path"]` -> `apps.hello.routes[0].path`; odd keys are quoted: `env["A.B"]`. */
export function formatPath(segments: readonly PathSegment[]): string {
  let out = "";
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (IDENTIFIER.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** The config's failures, for the catalog (docs/errors.md). */
export const configErrors = errorGroup("CONFIG", [
  ConfigError,
  ConfigUnreadable,
  ConfigYamlError,
  ConfigEnvError,
  ConfigSchemaError,
  ConfigCheckError,
  InvalidConfigFile,
  ConfigFileNotFound,
  UnitError,
]);
