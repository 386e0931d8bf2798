/**
 * @module contract/error-pages
 *
 * What a key of `error_pages` may be, and how large a page may be: shared by
 * the config's checks (which name a bad key or file) and the proxy (which
 * looks a status up by the same keys).
 */

/** The largest error page file the proxy keeps in memory (each proxy process holds every page). */
export const MAX_ERROR_PAGE_BYTES = 1024 * 1024;

/** A key of `error_pages`: one status (`502`), or a class of them (`5xx`). */
export type ErrorPageKey = { status: number } | { statusClass: 4 | 5 };

/** The key as a status (400–599) or a class (`4xx`, `5xx`), or undefined for anything else (`6xx`, `302`, `5XX`). */
export function parseErrorPageKey(key: string): ErrorPageKey | undefined {
  if (/^[45]xx$/.test(key)) return { statusClass: Number(key[0]) as 4 | 5 };
  if (!/^\d{3}$/.test(key)) return undefined;
  const status = Number(key);
  return status >= 400 && status <= 599 ? { status } : undefined;
}
