/**
 * @module cli/usage-error
 *
 * An error the user made (a bad flag value, a missing file): the CLI prints
 * its message as one line and exits with its code, without a stack.
 */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = "UsageError";
  }
}
