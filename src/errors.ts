/**
 * @module errors
 *
 * The base of every error tsgi-stack shows a user or lets a caller branch on,
 * after Fastify's lib/errors.js: one class per failure, each with a stable
 * `code` (`TSGI_ERR_<GROUP>_<WHAT>`, upper case) that logs, scripts and
 * docs/errors.md can rely on while the wording of messages moves on.
 *
 * A code belongs to a class, not to an instance: each class states it as
 * `static readonly code`, so the catalog can be listed without constructing
 * anything (test/errors.test.ts holds docs/errors.md to it), and the base
 * constructor copies it onto the instance. Likewise `static readonly status`
 * for a failure that has an HTTP status.
 *
 * Each room keeps its own classes next to the code that throws them and
 * registers them as one group with `errorGroup("GROUP", [...])` in a module
 * with no side effects; the test finds every module that calls errorGroup, so
 * a room adding its group edits no shared list. A group's codes must all
 * start with `TSGI_ERR_<GROUP>_`, and every code is unique across groups.
 *
 * What belongs here, and what stays a plain `Error`: a failure a user sees
 * (a message on the terminal, an answer of the control API, a refusal on the
 * wire) or a caller tells apart from others gets a class and a code. An
 * internal invariant ("no port was set aside"), a bug, or an error only ever
 * wrapped into one of ours stays `new Error(…)`: a code would promise a
 * stability nobody needs.
 *
 * This module imports nothing of ours, so that every room may use it.
 */

/** A class of the catalog, as a group lists it: its code (and status) readable without an instance. */
export interface ErrorClass {
  readonly name: string;
  readonly code: string;
  readonly status?: number;
  readonly prototype: TsgiStackError;
}

/** What a catalog error shows in JSON (the CLI's `--json`, the control API's answers). */
export interface ErrorJson {
  code: string;
  message: string;
  status?: number;
  at?: string;
}

/** The base of every catalog error; `instanceof TsgiStackError` tells ours from bugs. */
export abstract class TsgiStackError extends Error {
  /** The stable identifier: the class's `static code`. */
  readonly code: string;
  /** The HTTP status the failure corresponds to, when it has one (the class's `static status`). */
  readonly status?: number;
  /**
   * What is at fault, when one thing is: `file:line:column`, a config key, a
   * module spec, an address, a header. Part of the message already; here so
   * that a program need not parse the message for it.
   */
  readonly at?: string;

  constructor(message: string, options: { at?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const own = new.target as unknown as Partial<ErrorClass>;
    this.name = new.target.name;
    this.code = own.code ?? "TSGI_ERR_UNCATALOGUED";
    if (own.status !== undefined) this.status = own.status;
    if (options.at !== undefined) this.at = options.at;
  }

  toJSON(): ErrorJson {
    return {
      code: this.code,
      message: this.message,
      ...(this.status === undefined ? {} : { status: this.status }),
      ...(this.at === undefined ? {} : { at: this.at }),
    };
  }
}

/** One room's codes: `TSGI_ERR_<name>_…`. */
export interface ErrorGroup {
  readonly name: string;
  readonly classes: readonly ErrorClass[];
}

const GROUP_NAME = /^[A-Z][A-Z0-9]*$/;
const CODE = /^TSGI_ERR_[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$/;

/**
 * Registers a room's classes under its group name. Checked here, at import,
 * so that a bad code fails the first test that loads the room: every class
 * must state a well-formed code of this group, once.
 */
export function errorGroup(name: string, classes: readonly ErrorClass[]): ErrorGroup {
  if (!GROUP_NAME.test(name)) throw new Error(`error group ${JSON.stringify(name)}: a group name is upper case letters and digits`);
  const seen = new Set<string>();
  for (const type of classes) {
    const code = Object.hasOwn(type, "code") ? type.code : undefined;
    if (code === undefined || !CODE.test(code) || !code.startsWith(`TSGI_ERR_${name}_`)) {
      throw new Error(`error group ${name}: ${type.name} needs its own static code TSGI_ERR_${name}_…, not ${JSON.stringify(code)}`);
    }
    if (seen.has(code)) throw new Error(`error group ${name}: ${code} is stated twice`);
    seen.add(code);
  }
  return Object.freeze({ name, classes: Object.freeze([...classes]) });
}

/** True for a registered group (the test collects exports with this). */
export function isErrorGroup(value: unknown): value is ErrorGroup {
  return typeof value === "object" && value !== null && typeof (value as ErrorGroup).name === "string" && Array.isArray((value as ErrorGroup).classes);
}
