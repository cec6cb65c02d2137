/**
 * The few HTML pages a person may see (login errors, signed out, access denied): one small template,
 * no scripts, every interpolated text escaped. The headers forbid everything the page does not need.
 */

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

export const HTML_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  // frame-ancestors 'self': Kubeflow's dashboard shows apps (and so our 403 page) in a same-origin iframe.
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'self'",
  'x-content-type-options': 'nosniff',
};

/** A whole page; `body` is HTML the caller has escaped. */
export function htmlPage(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}code{background:#f3f3f3;padding:0 .2rem}</style>
</head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>
`;
}

/** A link paragraph, or "" without a URL. */
export function linkParagraph(url: string | null, text: string): string {
  return url === null ? '' : `<p><a href="${escapeHtml(url)}">${escapeHtml(text)}</a></p>`;
}
