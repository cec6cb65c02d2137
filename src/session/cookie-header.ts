/**
 * The Cookie header, read once and linearly: which of its cookies are ours (the session and its chunks,
 * login transactions, the sign-out hand-over), what the session cookie holds, and the header an upstream
 * may see — every other cookie byte for byte, ours removed (DESIGN §2: the session never reaches an
 * upstream, where a user-run notebook could replay it).
 *
 * Pairs are separated by ";" (RFC 6265) and by "," (Envoy joins two HTTP/1.1 Cookie lines with it); a
 * pair is `name=value` with blanks around both trimmed, or a bare value without "=". Nothing else splits
 * a pair: `prefs=x oidc_authz=…` is one cookie `prefs`, never a session smuggled in after a space.
 * A session pair right after a "," is removed but never read: a page script can store a cookie whose
 * value holds ",oidc_authz=…" (browsers allow commas in values, and the cookie's own name, say `prefs`,
 * escapes every __Host- rule), while a browser's own pairs always follow "; ". Only HTTP/1.1 clients that
 * split their cookies over several Cookie lines lose: they must send the session in the first line.
 *
 * Every search moves forward only, so a header costs time in proportion to its length whatever it holds
 * (the scanner this replaces searched from each occurrence of the name to the next ";", which made a
 * 59 KB header of `oidc_authz= oidc_authz= …` cost 80 times a normal check), and no more than
 * MAX_COOKIE_PAIRS pairs are looked at.
 */
import type { Config } from '../config/schema.js';
import { CHUNK_SIZE, MAX_CHUNKS, assembleSession, type SessionCookie } from './cookies.js';

/**
 * Browsers keep at most 180 cookies per site (Chromium, Firefox); this leaves room for commas inside
 * values, which count as separators here. Empty pairs (";;") count too: each one costs a step.
 */
export const MAX_COOKIE_PAIRS = 1000;
/** No cookie of ours is longer (a chunk is tag~count~part); a longer value is not ours to unseal. */
const MAX_OWN_VALUE = CHUNK_SIZE + 64;

export const HOST_PREFIX = '__Host-';
export const SECURE_PREFIX = '__Secure-';

/** The names of our cookies. */
export interface CookieNames {
  /** session.cookieName: cookies named after it, with or without a __Host-/__Secure- prefix, are ours. */
  readonly base: string;
  /** The prefix the session cookie is set with ("" or "__Host-"); a session under another prefix is not read. */
  readonly sessionPrefix: '' | typeof HOST_PREFIX;
}

export function cookieNamesOf(session: Pick<Config['session'], 'cookieName' | 'cookiePrefixes'>): CookieNames {
  return { base: session.cookieName, sessionPrefix: session.cookiePrefixes ? HOST_PREFIX : '' };
}

/** The session cookie's name as set (chunks add .0, .1, …). */
export function sessionCookieName(names: CookieNames): string {
  return names.sessionPrefix + names.base;
}

/** The base of the login-transaction and sign-out cookies' names (their paths forbid __Host-). */
export function secondaryCookieBase(names: CookieNames): string {
  return (names.sessionPrefix === '' ? '' : SECURE_PREFIX) + names.base;
}

export interface CookieHeaderView {
  readonly session: SessionCookie;
  /**
   * The header for the upstream: null when it holds none of our cookies (leave it as it is), "" when
   * nothing else is left (remove it), otherwise the other pairs in their order, each byte for byte.
   */
  readonly upstream: string | null;
  /** More than MAX_COOKIE_PAIRS pairs: not read to the end, so nothing read from it can be trusted. */
  readonly overflow: boolean;
}

const NO_COOKIES: CookieHeaderView = { session: { kind: 'none' }, upstream: null, overflow: false };
const OVERFLOW: CookieHeaderView = { session: { kind: 'none' }, upstream: null, overflow: true };

const SPACE = 0x20;
const TAB = 0x09;

const COMMA = 0x2c;

/**
 * A cursor over the pairs of a Cookie header. After next() returns true, the current pair is
 * [start, end) without surrounding blanks, its name [start, nameEnd) and value [valueStart, end);
 * nameEnd is -1 for a pair without "="; afterComma says the separator before it was ",". `count` is
 * the number of pairs looked at, empty ones included.
 */
class PairCursor {
  start = 0;
  end = 0;
  nameEnd = -1;
  valueStart = 0;
  afterComma = false;
  count = 0;
  private next_ = 0;
  /** The separator before the segment next() looks at ("," or ";"; 0 at the start of the header). */
  private separator = 0;
  private semicolon: number;
  private comma: number;
  private equals: number;

  constructor(private readonly header: string) {
    this.semicolon = header.indexOf(';');
    this.comma = header.indexOf(',');
    this.equals = header.indexOf('=');
  }

  /** The next non-empty pair; false at the end of the header. */
  next(): boolean {
    const header = this.header;
    const length = header.length;
    while (this.next_ <= length) {
      const from = this.next_;
      if (this.semicolon !== -1 && this.semicolon < from) this.semicolon = header.indexOf(';', from);
      if (this.comma !== -1 && this.comma < from) this.comma = header.indexOf(',', from);
      let stop = length;
      if (this.semicolon !== -1) stop = this.semicolon;
      if (this.comma !== -1 && this.comma < stop) stop = this.comma;
      this.next_ = stop + 1;
      const separatorBefore = this.separator;
      this.separator = stop < length ? header.charCodeAt(stop) : 0;
      this.count++;
      let start = from;
      let end = stop;
      while (start < end && isBlank(header.charCodeAt(start))) start++;
      while (end > start && isBlank(header.charCodeAt(end - 1))) end--;
      if (start === end) {
        if (this.count > MAX_COOKIE_PAIRS) return true;
        continue;
      }
      this.afterComma = separatorBefore === COMMA;
      if (this.equals !== -1 && this.equals < start) this.equals = header.indexOf('=', start);
      this.start = start;
      this.end = end;
      if (this.equals === -1 || this.equals >= end) {
        this.nameEnd = -1;
        this.valueStart = start;
        return true;
      }
      let nameEnd = this.equals;
      while (nameEnd > start && isBlank(header.charCodeAt(nameEnd - 1))) nameEnd--;
      let valueStart = this.equals + 1;
      while (valueStart < end && isBlank(header.charCodeAt(valueStart))) valueStart++;
      this.nameEnd = nameEnd;
      this.valueStart = valueStart;
      return true;
    }
    return false;
  }
}

function isBlank(code: number): boolean {
  return code === SPACE || code === TAB;
}

/** What a cookie name is to us. */
const enum Kind {
  Other,
  /** The session cookie (or a chunk of it) under the prefix it is set with. */
  Session,
  /** Ours, but not read: a session under another prefix, a login transaction, the sign-out hand-over. */
  Ours,
}

/**
 * Whether [start, end) of `header` names one of our cookies. Ours: `<prefix><base>` and
 * `<prefix><base>.<anything>` (the session and its chunks), `<prefix><base>_login_…` and
 * `<prefix><base>_logout`, for prefix "", "__Host-" or "__Secure-".
 */
function kindOf(header: string, start: number, end: number, names: CookieNames): Kind {
  let at = start;
  let prefix = '';
  if (header.startsWith(HOST_PREFIX, at)) prefix = HOST_PREFIX;
  else if (header.startsWith(SECURE_PREFIX, at)) prefix = SECURE_PREFIX;
  at += prefix.length;
  if (!header.startsWith(names.base, at)) return Kind.Other;
  at += names.base.length;
  const session = prefix === names.sessionPrefix ? Kind.Session : Kind.Ours;
  if (at === end) return session;
  const next = header.charCodeAt(at);
  if (next === 0x2e) return isChunkSuffix(header, at + 1, end) ? session : Kind.Ours;
  if (next === 0x5f && (header.startsWith('_login_', at) || (end - at === 7 && header.startsWith('_logout', at)))) return Kind.Ours;
  return Kind.Other;
}

/**
 * "0" … "11" as written (MAX_CHUNKS): the chunk names the session reader looks at. Others ("00", "12",
 * "x") are ours but never read, so one request names at most 13 session cookies.
 */
function isChunkSuffix(header: string, start: number, end: number): boolean {
  if (end - start === 1) return isDigit(header.charCodeAt(start));
  if (end - start !== 2 || header.charCodeAt(start) !== 0x31) return false;
  const second = header.charCodeAt(start + 1) - 0x30;
  return second >= 0 && second < MAX_CHUNKS - 10;
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/**
 * Reads a Cookie header: the session (exactly one session cookie or one set of chunks; two copies of
 * any of them make it invalid, whichever is real), and the header without our cookies.
 */
export function readCookieHeader(header: string | undefined, names: CookieNames): CookieHeaderView {
  if (header === undefined || header.length === 0) return NO_COOKIES;
  const cursor = new PairCursor(header);
  let session: Map<string, string> | null = null;
  let duplicate = false;
  let oversized = false;
  let upstream: string | null = null;
  /** Where the pairs kept so far end, while they are still one unbroken stretch of the header. */
  let keptEnd = -1;
  let keptStart = -1;
  let previousKept = false;
  while (cursor.next()) {
    if (cursor.count > MAX_COOKIE_PAIRS) return OVERFLOW;
    const { start, end, nameEnd } = cursor;
    let kind = nameEnd === -1 ? Kind.Other : kindOf(header, start, nameEnd, names);
    // After ",": possibly inside another cookie's value, where a page script can put anything.
    if (kind === Kind.Session && cursor.afterComma) kind = Kind.Ours;
    if (kind === Kind.Other) {
      if (upstream === null) {
        // No cookie of ours yet: the kept pairs are the header from the first one to this one, unchanged.
        if (keptStart === -1) keptStart = start;
      } else if (previousKept) {
        upstream += header.slice(keptEnd, end);
      } else {
        upstream += upstream.length === 0 ? header.slice(start, end) : `; ${header.slice(start, end)}`;
      }
      keptEnd = end;
      previousKept = true;
      continue;
    }
    if (upstream === null) upstream = keptStart === -1 ? '' : header.slice(keptStart, keptEnd);
    previousKept = false;
    if (kind === Kind.Ours) continue;
    const name = header.slice(start, nameEnd);
    if (end - cursor.valueStart > MAX_OWN_VALUE) oversized = true;
    session ??= new Map();
    if (session.has(name)) duplicate = true;
    else session.set(name, header.slice(cursor.valueStart, end));
  }
  return { session: sessionOf(session, duplicate, oversized, names), upstream, overflow: false };
}

function sessionOf(found: Map<string, string> | null, duplicate: boolean, oversized: boolean, names: CookieNames): SessionCookie {
  if (found === null) return { kind: 'none' };
  const cookieNames = [...found.keys()];
  if (duplicate) return { kind: 'invalid', reason: 'duplicate', names: cookieNames };
  if (oversized) return { kind: 'invalid', reason: 'oversized', names: cookieNames };
  return assembleSession(found, sessionCookieName(names));
}

/** The session cookie `name` (no prefix) in a Cookie header. */
export function readSessionCookie(header: string | undefined, name: string): SessionCookie {
  return readCookieHeader(header, { base: name, sessionPrefix: '' }).session;
}

/** What a Cookie header holds under one exact name. */
export type CookieLookup =
  | { readonly found: 'none' }
  | { readonly found: 'one'; readonly value: string }
  /** Two or more (or a header too long to read to the end): which one the browser meant cannot be known. */
  | { readonly found: 'several' };

const NOT_FOUND: CookieLookup = { found: 'none' };
const SEVERAL: CookieLookup = { found: 'several' };

/** The cookie named exactly `name`, read only where a browser puts its own pairs (not after ","). */
export function lookupCookie(header: string | undefined, name: string): CookieLookup {
  if (header === undefined || header.length === 0) return NOT_FOUND;
  const cursor = new PairCursor(header);
  let value: string | null = null;
  while (cursor.next()) {
    if (cursor.count > MAX_COOKIE_PAIRS) return SEVERAL;
    const { start, nameEnd } = cursor;
    if (cursor.afterComma || nameEnd - start !== name.length || !header.startsWith(name, start)) continue;
    if (value !== null) return SEVERAL;
    value = header.slice(cursor.valueStart, cursor.end);
  }
  return value === null ? NOT_FOUND : { found: 'one', value };
}

/** The value of the one cookie named exactly `name`; null when there is none or more than one. */
export function findCookie(header: string | undefined, name: string): string | null {
  const lookup = lookupCookie(header, name);
  return lookup.found === 'one' ? lookup.value : null;
}
