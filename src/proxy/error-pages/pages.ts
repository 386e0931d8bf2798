/**
 * @module proxy/error-pages/pages
 *
 * The `error_pages` in force: which HTML file (already read) answers a
 * status for an app. Lookups go the app's map first, then the stack's
 * (`proxy.error_pages`), each an exact status before its class (`502`
 * before `5xx`) — so an app that maps `5xx` is never served the stack's
 * `502`. Each app's table is built once per configuration, on the first
 * error about it, and a configuration without pages costs a lookup in an
 * empty map per error answer, nothing per request.
 */
import { parseErrorPageKey } from "../../contract/error-pages.ts";

/** The pages as the proxy is given them (stack/proxy-settings.ts reads the files): key (`502`, `5xx`) -> HTML. */
export interface ErrorPagesSpec {
  /** `proxy.error_pages`: for every app, and for what no app answers (no route, a bad request head). */
  stack?: Readonly<Record<string, string>>;
  /** Each app's own `error_pages`, by app name. */
  apps?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

type Table = ReadonlyMap<number, Buffer>;

/** One `error_pages` map as a table of statuses: exact statuses first, then each class fills the statuses it has not got. */
function tableOf(pages: Readonly<Record<string, string>> | undefined, under?: Table): Map<number, Buffer> {
  const table = new Map<number, Buffer>();
  const classes: [4 | 5, Buffer][] = [];
  for (const [key, html] of Object.entries(pages ?? {})) {
    const parsed = parseErrorPageKey(key);
    if (!parsed) continue; // the config's checks refused it already
    if ("status" in parsed) table.set(parsed.status, Buffer.from(html));
    else classes.push([parsed.statusClass, Buffer.from(html)]);
  }
  for (const [statusClass, body] of classes) {
    for (let status = statusClass * 100; status < statusClass * 100 + 100; status++) if (!table.has(status)) table.set(status, body);
  }
  for (const [status, body] of under ?? []) if (!table.has(status)) table.set(status, body);
  return table;
}

/** An app's page lookup by status. */
export type PageLookup = (status: number) => Buffer | undefined;

export class ErrorPages {
  private readonly stack: Table;
  private readonly byApp = new Map<string, Table>();
  private readonly lookups = new Map<string, PageLookup>();

  constructor(private readonly spec: ErrorPagesSpec = {}) {
    this.stack = tableOf(spec.stack);
  }

  /** The custom page for `status` in an answer about `app` (undefined: no app, as for no route), or undefined when none is configured. */
  pageFor(app: string | undefined, status: number): Buffer | undefined {
    if (app === undefined || this.spec.apps?.[app] === undefined) return this.stack.get(status);
    let table = this.byApp.get(app);
    if (!table) this.byApp.set(app, (table = tableOf(this.spec.apps[app], this.stack)));
    return table.get(status);
  }

  /**
   * The lookup for an app's answers (a static folder's errors), made once per
   * app; undefined when no page applies to it, so that such an app's
   * requests carry nothing for it.
   */
  lookupFor(app: string): PageLookup | undefined {
    if (this.stack.size === 0 && this.spec.apps?.[app] === undefined) return undefined;
    let lookup = this.lookups.get(app);
    if (!lookup) this.lookups.set(app, (lookup = (status) => this.pageFor(app, status)));
    return lookup;
  }
}
