/**
 * @module proxy/app-headers
 *
 * An app's `headers` (issue #13): response headers set on every response of
 * the app, as nginx's `add_header NAME VALUE always` — on the workers'
 * responses (replacing a header of the same name the worker sent, as
 * Caddy's `header` does; nginx's add_header would send both), and on the
 * proxy's own answers for the app. A `null` value removes the worker's
 * header of that name (Caddy's `header -Server`) and adds none. Compiled
 * once per configuration; an app without `headers` has no entry, so its
 * responses pay nothing.
 */

export interface AppHeaders {
  /** The names, lowercased (those set and those removed): a worker's header of one of them is dropped. */
  readonly names: ReadonlySet<string>;
  /** The headers set (not the removed ones), for node's writeHead/setHeader. */
  readonly record: Readonly<Record<string, string>>;
}

/** An app's `headers` as configured: a value, or null to remove the worker's header. */
export type HeaderSettings = Readonly<Record<string, string | null>>;

export function compileAppHeaders(headers: Readonly<Record<string, HeaderSettings>>): Map<string, AppHeaders> {
  const compiled = new Map<string, AppHeaders>();
  for (const [app, settings] of Object.entries(headers)) {
    if (Object.keys(settings).length === 0) continue;
    const record: Record<string, string> = {};
    for (const [name, value] of Object.entries(settings)) if (value !== null) record[name] = value;
    compiled.set(app, { names: new Set(Object.keys(settings).map((name) => name.toLowerCase())), record });
  }
  return compiled;
}

/** A worker's response headers (flat name, value, … as proxy/respond.ts responseHeaders gives them) with the app's set over them. */
export function withAppHeaders(flat: readonly string[], headers: AppHeaders): string[] {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    if (!headers.names.has(flat[i]!.toLowerCase())) out.push(flat[i]!, flat[i + 1]!);
  }
  for (const [name, value] of Object.entries(headers.record)) out.push(name, value);
  return out;
}

/** A Vary value with `members` added (each once, compared without case; `*` already there covers everything). */
export function joinVary(existing: string | undefined, members: string): string {
  const have = (existing ?? "").split(",").map((member) => member.trim()).filter(Boolean);
  if (have.includes("*")) return "*";
  for (const member of members.split(",").map((each) => each.trim()).filter(Boolean)) {
    if (!have.some((kept) => kept.toLowerCase() === member.toLowerCase())) have.push(member);
  }
  return have.join(", ");
}

/**
 * The head of one of the proxy's own answers (an error, a redirect) with the
 * app's headers set over it. Names are compared without case, so an app's
 * `vary` never stands beside the proxy's `Vary`: Vary values are joined (the
 * answer's body depends on both), and the proxy's Content-Type is kept — it
 * says what the proxy's own body is, which the app's setting cannot know.
 */
export function answerHeadersWithApp(head: Readonly<Record<string, string | number>>, app: Readonly<Record<string, string>> | undefined): Record<string, string | number> {
  const out: Record<string, string | number> = { ...head };
  if (!app) return out;
  const keyOf = new Map(Object.keys(out).map((name) => [name.toLowerCase(), name]));
  for (const [name, value] of Object.entries(app)) {
    const lower = name.toLowerCase();
    if (lower === "content-type") continue;
    const existing = keyOf.get(lower);
    if (lower === "vary" && existing !== undefined) {
      out[existing] = joinVary(String(out[existing]), value);
      continue;
    }
    if (existing !== undefined) delete out[existing];
    out[name] = value;
    keyOf.set(lower, name);
  }
  return out;
}
