/**
 * @module export/nginx-error-pages
 *
 * `error_pages` in nginx's words, for export/nginx.ts: nginx's error_page
 * without `=code` (the original status kept), each file served by an
 * internal location of the server —
 *
 *   proxy.error_pages: { 404: pages/404.html, 5xx: pages/5xx.html }
 *     error_page 404 /__tsgi_error/0.html;                       (server level)
 *     error_page 500 502 503 504 … /__tsgi_error/1.html;
 *     location = /__tsgi_error/0.html { internal; alias "/…/pages/404.html"; … }
 *
 * A class (`5xx`) is written as the statuses of it that nginx or the stack
 * answers by itself (nginx's error_page takes codes, not classes). Neither
 * proxy_intercept_errors nor uwsgi_intercept_errors is turned on: nginx's
 * error_page then applies to the answers nginx makes itself (no location,
 * an upstream it could not reach or that timed out, a limit, a body too
 * large) and never to a worker's own 404 or 500 — the stack's rule.
 *
 * A location's error_page directives replace the server's (nginx inherits
 * them only into a level that has none), and a worker location already has
 * one (the upgrade's 418): so each worker location repeats its whole list,
 * the app's pages over the stack's. A static app's location inherits the
 * server's, or has its own list when the app has pages: its folder's own
 * 403/404/405 take them in both proxies.
 *
 * An app's `headers` go on the stack's answers and pages for it (nginx's
 * `add_header … always`), but error_page is an internal redirect: the
 * headers of the location that failed are lost, and the page's location
 * adds its own. So an app with headers has its pages served by internal
 * locations of its own (one per file), carrying its add_header lines, and
 * every one of its locations has its own list pointing there; the apps
 * without headers share the plain ones.
 */
import type { StackConfig } from "../config/schema.ts";
import { parseErrorPageKey } from "../contract/error-pages.ts";
import { ALLOWED_METHODS, STATIC_METHODS } from "../http/request-rules.ts";
import { REASON_PHRASES } from "../proxy/refusal.ts";
import { appKind } from "../stack/proxy-settings.ts";
import { headerDirectives } from "./nginx-answers.ts";
import { quotedLiteral } from "./nginx-syntax.ts";

/** The URI prefix of the internal locations that serve the pages (no route of the stack's can reach an internal location). */
const PREFIX = "/__tsgi_error/";

/**
 * The statuses a class stands for: those nginx answers by itself (its
 * special responses) and those the stack's proxy does, 499 excepted (nginx
 * refuses error_page 499: the client is gone). A limit's configured status
 * is added by `statusesOf`.
 */
const ANSWERED = [
  ...new Set([400, 401, 402, 403, 404, 405, 406, 408, 409, 410, 411, 412, 413, 414, 415, 416, 421, 429, 494, 495, 496, 497, 500, 501, 502, 503, 504, 505, 507, ...Object.keys(REASON_PHRASES).map(Number)]),
].sort((a, b) => a - b);

/** The pages of one scope (stack's, or an app's over the stack's) as status -> file, a status over its class. */
type StatusFiles = Map<number, string>;

function statusFiles(config: StackConfig, pages: Readonly<Record<string, string>> | undefined, under?: StatusFiles): StatusFiles {
  const limitStatuses = Object.values(config.apps).flatMap((app) => [app.rate_limit?.status, app.conn_limit?.status]).filter((status) => status !== undefined);
  const statuses = [...new Set([...ANSWERED, ...limitStatuses])].filter((status) => status !== 499);
  const files: StatusFiles = new Map();
  const classes: [number, string][] = [];
  for (const [key, file] of Object.entries(pages ?? {})) {
    const parsed = parseErrorPageKey(key);
    if (parsed && "status" in parsed) files.set(parsed.status, file);
    else if (parsed) classes.push([parsed.statusClass, file]);
  }
  for (const [statusClass, file] of classes) {
    for (const status of statuses) if (Math.floor(status / 100) === statusClass && !files.has(status)) files.set(status, file);
  }
  for (const [status, file] of under ?? []) if (!files.has(status)) files.set(status, file);
  return files;
}

/** An internal location serving one file: for the apps without headers (app undefined), or with one app's headers. */
interface PageLocation {
  uri: string;
  file: string;
  headers: string[];
}

/** The error pages of an export: the files as nginx sees them, and the error_page lines of each scope. */
export class NginxErrorPages {
  /** The page locations, keyed by the app whose headers they carry ("" for none) and the file. */
  private readonly pages = new Map<string, PageLocation>();
  private readonly stack: StatusFiles;
  private readonly apps = new Map<string, StatusFiles>();
  /** The apps whose pages carry their headers: each has its own list in every location (and its own page locations). */
  private readonly withHeaders = new Set<string>();

  /**
   * `allowVariable`: the variable allowDefinition() defines, which each page location sends as `Allow`.
   * `fileFor`: a page file as nginx sees it (default: the config's, absolute; Compose mounts it elsewhere).
   */
  constructor(
    private readonly config: StackConfig,
    private readonly allowVariable: string,
    private readonly fileFor: (file: string) => string = (file) => file,
  ) {
    this.stack = statusFiles(config, config.proxy.error_pages);
    for (const [name, app] of Object.entries(config.apps)) if (app.error_pages) this.apps.set(name, statusFiles(config, app.error_pages, this.stack));
    // A redirect app answers no error of its own: it keeps the server's pages.
    for (const [name, app] of Object.entries(config.apps)) if (appKind(app) !== "redirect" && headerDirectives(app, undefined).length > 0) this.withHeaders.add(name);
    // The URIs in a stable order: the stack's files, then each app's, as the config lists them.
    this.lines(this.stack, undefined);
    for (const name of Object.keys(config.apps)) if (this.hasOwn(name)) this.appLines(name);
  }

  /** The server-level lines: the stack's pages (no route, a bad request head, and every location without its own list). */
  serverLines(): string[] {
    return this.lines(this.stack, undefined);
  }

  /**
   * The lines of a location of `app` that has its own list — a worker
   * location always (it has an error_page of its own, so it inherits none),
   * a static one when `hasOwn` (staticLines): the app's pages over the
   * stack's, served with the app's headers when it has some.
   */
  appLines(app: string): string[] {
    return this.lines(this.apps.get(app) ?? this.stack, this.withHeaders.has(app) ? app : undefined);
  }

  /** The lines of a location that serves `app`'s folder: its own list when it needs one, else none (it inherits the server's). */
  staticLines(app: string): string[] {
    return this.hasOwn(app) ? this.appLines(app) : [];
  }

  /** Whether an app's locations need their own list (pages of its own, or headers for the stack's); otherwise they inherit the server's. */
  private hasOwn(app: string): boolean {
    return this.apps.has(app) || this.withHeaders.has(app);
  }

  /** The internal locations that serve the files: one per file (and per app with headers), in every server block. */
  locations(): string[] {
    return [...this.pages.values()].flatMap(({ uri, file, headers }) => [
      "",
      `location = ${uri} {`,
      "    internal;",
      `    alias ${quotedLiteral(this.fileFor(file))};`,
      // Whatever the file's name, it is served as the stack serves it.
      "    types { }",
      "    default_type \"text/html; charset=utf-8\";",
      ...headers.map((line) => `    ${line}`),
      // The 405's Allow (RFC 9110 §15.5.6: a MUST) was set where the 405 was made; a page location sends its own headers only.
      `    add_header Allow ${this.allowVariable} always;`,
      "}",
    ]);
  }

  /**
   * The http-level map behind allowVariable: a 405 served as a page gets the
   * Allow header the stack sends with it — GET, HEAD for a static folder (the
   * only 405 nginx makes there), the methods the front door takes for TRACE —
   * and any other status none (nginx sends no header with an empty value).
   * No lines when the export has no page location.
   */
  allowDefinition(): string[] {
    if (this.pages.size === 0) return [];
    return [
      "",
      // $request, the request line as received: error_page's redirect has turned $request_method into GET by now.
      `map "$status:$request" ${this.allowVariable} {`,
      '    default "";',
      `    "~^405:TRACE " ${JSON.stringify(ALLOWED_METHODS)};`,
      `    "~^405:" ${JSON.stringify(STATIC_METHODS)};`,
      "}",
    ];
  }

  private uriOf(file: string, app: string | undefined): string {
    const key = `${app ?? ""}\0${file}`;
    let page = this.pages.get(key);
    if (page === undefined) {
      page = { uri: `${PREFIX}${this.pages.size}.html`, file, headers: app === undefined ? [] : headerDirectives(this.config.apps[app]!, undefined) };
      this.pages.set(key, page);
    }
    return page.uri;
  }

  /** One error_page line per file, its statuses in order, to the page locations of `app` (undefined: the plain ones). */
  private lines(files: StatusFiles, app: string | undefined): string[] {
    const byFile = new Map<string, number[]>();
    for (const [status, file] of [...files].sort((a, b) => a[0] - b[0])) byFile.set(file, [...(byFile.get(file) ?? []), status]);
    return [...byFile].map(([file, statuses]) => `error_page ${statuses.join(" ")} ${this.uriOf(file, app)};`);
  }
}
