/**
 * Path and host normalization for the check. Rules always match the normalized path, so the same
 * resource cannot be reached under a spelling the rules did not see. Anything an upstream could read
 * another way (dot segments, encoded slashes, `;` parameters, double encoding, bad UTF-8, control
 * characters) is refused instead of guessed at: those requests get 400.
 */

export type BadRequestReason =
  | 'no_leading_slash'
  | 'path_too_long'
  | 'invalid_character'
  | 'backslash'
  | 'semicolon'
  | 'dot_segment'
  | 'bad_escape'
  | 'encoded_slash'
  | 'double_encoding'
  | 'control_character'
  | 'invalid_utf8'
  | 'ambiguous_unicode'
  | 'bad_host';

export type NormalizedPath = { ok: true; path: string } | { ok: false; reason: BadRequestReason };

/** Longer paths are refused: no real route needs them and they are a cheap way to burn CPU. */
export const MAX_PATH_LENGTH = 8192;

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;

/**
 * Normalizes the path part (no query) of the original request.
 * Result: unreserved and other harmless escapes decoded, runs of `/` collapsed to one.
 */
export function normalizePath(raw: string): NormalizedPath {
  const length = raw.length;
  if (length === 0 || raw.charCodeAt(0) !== SLASH) return { ok: false, reason: 'no_leading_slash' };
  if (length > MAX_PATH_LENGTH) return { ok: false, reason: 'path_too_long' };

  let hasPercent = false;
  let hasDoubleSlash = false;
  let segmentStart = 1;
  for (let i = 1; i <= length; i++) {
    const code = i < length ? raw.charCodeAt(i) : SLASH;
    if (code === SLASH) {
      const segmentLength = i - segmentStart;
      if (segmentLength === 0 && i < length) hasDoubleSlash = true;
      else if (isDotSegment(raw, segmentStart, segmentLength)) return { ok: false, reason: 'dot_segment' };
      segmentStart = i + 1;
      continue;
    }
    if (code < 0x21 || code > 0x7e) return { ok: false, reason: code < 0x20 || code === 0x7f ? 'control_character' : 'invalid_character' };
    if (code === PERCENT) hasPercent = true;
    else if (code === 0x5c) return { ok: false, reason: 'backslash' };
    else if (code === 0x3b) return { ok: false, reason: 'semicolon' };
    else if (code === 0x23) return { ok: false, reason: 'invalid_character' };
  }
  if (!hasPercent && !hasDoubleSlash) return { ok: true, path: raw };

  let path = raw;
  if (hasPercent) {
    const decoded = decodeEscapes(raw);
    if (!decoded.ok) return decoded;
    path = decoded.path;
  }
  if (hasDoubleSlash || hasPercent) path = path.replace(/\/{2,}/g, '/');
  return hasPercent ? checkDecoded(path) : { ok: true, path };
}

function isDotSegment(text: string, start: number, length: number): boolean {
  if (length === 1) return text.charCodeAt(start) === DOT;
  if (length === 2) return text.charCodeAt(start) === DOT && text.charCodeAt(start + 1) === DOT;
  return false;
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** Validates every `%XX` first, so that decodeURIComponent only ever sees escapes we accept. */
function decodeEscapes(raw: string): NormalizedPath {
  for (let i = raw.indexOf('%'); i !== -1; i = raw.indexOf('%', i + 1)) {
    const high = i + 2 < raw.length ? hexValue(raw.charCodeAt(i + 1)) : -1;
    const low = high >= 0 ? hexValue(raw.charCodeAt(i + 2)) : -1;
    if (low < 0) return { ok: false, reason: 'bad_escape' };
    const byte = high * 16 + low;
    if (byte === 0x2f) return { ok: false, reason: 'encoded_slash' };
    if (byte === 0x5c) return { ok: false, reason: 'backslash' };
    if (byte === 0x25) return { ok: false, reason: 'double_encoding' };
    if (byte === 0x3b) return { ok: false, reason: 'semicolon' };
    if (byte < 0x20 || byte === 0x7f) return { ok: false, reason: 'control_character' };
  }
  try {
    // Throws on invalid UTF-8, which includes overlong forms such as %c0%ae and lone surrogates.
    return { ok: true, path: decodeURIComponent(raw) };
  } catch {
    return { ok: false, reason: 'invalid_utf8' };
  }
}

const NON_ASCII = /[^\x00-\x7f]/;
/** C1 control characters (U+0080–U+009F), refused like their ASCII counterparts. */
const C1_CONTROL = /[\u0080-\u009f]/;
const DOT_SEGMENT = /(?:^|\/)\.{1,2}(?:\/|$)/;

/** Checks made after decoding: escaped dots may now form dot segments; some Unicode folds to `/`, `.`. */
function checkDecoded(path: string): NormalizedPath {
  if (DOT_SEGMENT.test(path)) return { ok: false, reason: 'dot_segment' };
  if (NON_ASCII.test(path)) {
    if (C1_CONTROL.test(path)) return { ok: false, reason: 'control_character' };
    // Upstreams that apply Unicode compatibility folding (NFKC) read U+FF0F as "/" and U+FF0E as ".". Any
    // character that folds into ASCII punctuation is refused: punctuation is what splits paths, dot segments
    // and the captures inside a segment ("ws-alice．crops" must not escape `{ws}.{collection}`).
    if (countPunctuation(path.normalize('NFKC')) !== countPunctuation(path)) return { ok: false, reason: 'ambiguous_unicode' };
  }
  return { ok: true, path };
}

const ASCII_PUNCTUATION = /[!-/:-@[-`{-~]/g;

function countPunctuation(text: string): number {
  return text.match(ASCII_PUNCTUATION)?.length ?? 0;
}

export type NormalizedHost = { ok: true; host: string } | { ok: false; reason: 'bad_host' };

const HOST_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const IPV6_LITERAL = /^\[[0-9a-f:.]+\]$/;

/**
 * The host used for rule matching: lower case, without port and without a trailing dot
 * ("Example.COM.:443" → "example.com"), so a rule for a host cannot be dodged by spelling it differently.
 */
export function normalizeHost(header: string | undefined): NormalizedHost {
  if (header === undefined || header.length === 0 || header.length > 300) return { ok: false, reason: 'bad_host' };
  let host = header.toLowerCase();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end === -1) return { ok: false, reason: 'bad_host' };
    const rest = host.slice(end + 1);
    if (rest !== '' && (!rest.startsWith(':') || !validPort(rest.slice(1)))) return { ok: false, reason: 'bad_host' };
    host = host.slice(0, end + 1);
    return IPV6_LITERAL.test(host) ? { ok: true, host } : { ok: false, reason: 'bad_host' };
  }
  const colon = host.indexOf(':');
  if (colon !== -1) {
    if (!validPort(host.slice(colon + 1))) return { ok: false, reason: 'bad_host' };
    host = host.slice(0, colon);
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  return HOST_NAME.test(host) ? { ok: true, host } : { ok: false, reason: 'bad_host' };
}

function validPort(text: string): boolean {
  return /^\d{1,5}$/.test(text) && Number(text) <= 65535;
}
