/**
 * @module cli/logs/access-lines
 *
 * Which app an access log line is of, for `tsgi-stack logs --access APP`.
 * Both formats of the access log (proxy/access-log.ts) carry it: `combined`
 * ends in `app=NAME worker=… rt=… rid=…` (after the quoted fields, so a
 * user agent holding "app=x" cannot pass for it), `json` has an `app` key.
 */

/** The stack's fields at the end of a combined line; group 1 is the app ("-" when no app took the request). */
const COMBINED_TAIL = / app=(\S+) worker=\S+ rt=\S+ rid=\S+(?: err=\S+)?$/;

/** The app of an access log line of either format, or undefined when it names none. */
export function appOfAccessLine(line: string): string | undefined {
  if (line.startsWith("{")) {
    try {
      const app = (JSON.parse(line) as { app?: unknown }).app;
      return typeof app === "string" ? app : undefined;
    } catch {
      return undefined;
    }
  }
  const app = COMBINED_TAIL.exec(line)?.[1];
  return app === "-" ? undefined : app;
}
