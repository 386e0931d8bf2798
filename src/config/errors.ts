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
 * empty for the document itself. Plain data: the loader collects every error
 * rather than throwing the first.
 */
export type PathSegment = string | number;

export class ConfigError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly path: string,
    readonly message: string,
  ) {}

  /** `file:line:column path: message`, leaving out what is unknown. */
  format(): string {
    const where = this.line > 0 ? `${this.file}:${this.line}:${this.column}` : this.file;
    return this.path ? `${where} ${this.path}: ${this.message}` : `${where}: ${this.message}`;
  }

  toString(): string {
    return this.format();
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
