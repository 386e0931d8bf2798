/**
 * @module proxy/error-pages/default-page
 *
 * The proxy's own error answer as a small HTML page, for a client that
 * prefers HTML (a browser): the status, its reason phrase, the one sentence
 * the plain-text answer says, and the request id, so that whoever sees it
 * can quote it in a report. Self-contained — no script, no external asset —
 * and every value escaped (a no-route sentence quotes the Host and path the
 * client sent). Rendered per answer: errors are rare, and nothing of it runs
 * on a request that is not answered with one.
 */

const ESCAPES: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Text made safe for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char]!);
}

export interface PageFacts {
  status: number;
  /** The reason phrase (`Bad Gateway`). */
  reason: string;
  /** What happened, one sentence (`app "api" did not answer`). */
  detail: string;
  requestId: string;
}

export function defaultErrorPage({ status, reason, detail, requestId }: PageFacts): string {
  const title = escapeHtml(`${status} ${reason}`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;padding:3rem 1.5rem;color:#222;background:#fafafa}
main{max-width:36rem;margin:0 auto}
h1{font-size:1.5rem;margin:0 0 1rem}
p{line-height:1.5}
.id{color:#666;font-size:.875rem}
code{font-family:ui-monospace,monospace}
</style>
</head>
<body>
<main>
<h1>${title}</h1>
<p>${escapeHtml(capitalized(detail))}.</p>
<p class="id">Request id: <code>${escapeHtml(requestId)}</code></p>
</main>
</body>
</html>
`;
}

const capitalized = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);
