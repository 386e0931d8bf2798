/**
 * @module export/nginx-syntax
 *
 * How the nginx exporters write the config's own words into nginx's
 * configuration: names, quoted strings and regex literals.
 *
 * nginx reads `$name` as a variable in the values of many directives
 * (add_header, return, rewrite, set, alias, ssl_certificate, access_log …)
 * and has no escape for a `$` that is just a character. A header value, a
 * redirect target or a path of the config may hold one, so those values are
 * written with `literal`: each `$` becomes `${tsgi_dollar}`, a variable whose
 * value is `$`, defined once at http level by DOLLAR_DEFINITION (a `geo`
 * block, whose values nginx does not read variables in). What nginx reads no
 * variables in (map and if patterns, location prefixes) takes `quoted`.
 */

/** nginx names (variables, upstreams, zones): letters, digits and underscores. */
export const ident = (value: string) => value.replace(/[^A-Za-z0-9_]/g, "_");

/** The inside of a quoted string: backslashes and quotes escaped. */
const escapeQuotes = (value: string) => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"');

/** A string nginx reads as one token, for a directive that reads no variables in it. */
export const quoted = (value: string) => `"${escapeQuotes(value)}"`;

/** The variable whose value is a `$`: the same definition in every export, so that two of them may share one nginx. */
const DOLLAR = "${tsgi_dollar}";

/** The http-level block that defines DOLLAR, needed by a configuration that uses `literal` on a `$`. */
export const DOLLAR_DEFINITION = ['geo $tsgi_dollar { default "$"; }'];

/**
 * `value` as text inside a quoted string of a directive that reads variables:
 * nginx gives back exactly `value`. Callers add the quotes, so that their own
 * variables may sit beside it (`"${literal(base)}$is_args$args"`).
 */
export const literal = (value: string) => escapeQuotes(value).replaceAll("$", DOLLAR);

/** `value` quoted for a directive that reads variables: nginx gives back exactly `value`. */
export const quotedLiteral = (value: string) => `"${literal(value)}"`;

/** Whether a configuration's text uses DOLLAR (then it needs DOLLAR_DEFINITION). */
export const usesDollar = (text: string) => text.includes(DOLLAR);

/** `text` matched literally inside a PCRE pattern. */
export const regexLiteral = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
