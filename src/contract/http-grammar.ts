/**
 * @module contract/http-grammar
 *
 * The few pieces of HTTP's grammar (RFC 9110) that several layers check:
 * the TSGI validator and response driver, the uwsgi request parser, the
 * proxy's upstream response parser and its Forwarded header. One copy, so
 * that what the worker lets through and what the proxy accepts cannot differ
 * by a character.
 */

/** The characters of tchar (RFC 9110 §5.6.2), as a character class. */
const TCHAR_CLASS = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]";
/** The characters a field value or reason phrase may hold: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5). */
export const FIELD_VALUE_CLASS = "[\\t\\x20-\\x7e\\x80-\\xff]";

/** One tchar. */
export const TCHAR = new RegExp(TCHAR_CLASS);

/** token = 1*tchar (RFC 9110 §5.6.2): method names, and a parameter value that needs no quotes. */
export const TOKEN = new RegExp(`^${TCHAR_CLASS}+$`);

/** field-name = token (RFC 9110 §5.1): anything else is refused by every HTTP stack on the way. */
export const FIELD_NAME = TOKEN;

/**
 * A whole field value or reason phrase: no CR, LF, NUL or other controls,
 * which would split a message. Node's http rejects anything else.
 */
export const FIELD_VALUE = new RegExp(`^${FIELD_VALUE_CLASS}*$`);
