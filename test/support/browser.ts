/**
 * A tiny browser for tests: Node's fetch with `redirect: 'manual'`, a cookie jar, HTML form submission,
 * and `loginAtIdp` to walk an OIDC login through the dev IdP's login page (demo/dev-idp.ts).
 *
 * Cookies are host-only and scoped to `host:port` (servers on different 127.0.0.1 ports do not share
 * cookies, unlike real browsers which ignore the port); `Domain` is recorded but not used for matching.
 * Path, Max-Age, Expires, Secure and the `__Secure-`/`__Host-` prefixes are honoured. Like Chromium on
 * localhost, Secure cookies are accepted and sent over plain http unless `secureOverHttp: false`.
 */

import { request as httpRequest } from 'node:http';

export interface Cookie {
  readonly name: string;
  readonly value: string;
  /** host:port the cookie belongs to, e.g. 127.0.0.1:41234 */
  readonly host: string;
  readonly path: string;
  /** Epoch ms; undefined for a session cookie. */
  readonly expires: number | undefined;
  readonly secure: boolean;
  readonly httpOnly: boolean;
  readonly sameSite: string | undefined;
  /** The Domain attribute as sent (informational only). */
  readonly domain: string | undefined;
}

export interface CookieJarOptions {
  /** Store and send Secure cookies over http (as browsers do for localhost). Default true. */
  secureOverHttp?: boolean;
  /** Clock for expiry decisions (epoch ms). Default Date.now; tests can move it forward instead of sleeping. */
  now?: () => number;
}

export interface SetCookieAttributes {
  path?: string;
  /** Seconds from now. */
  maxAge?: number;
  expires?: Date;
  secure?: boolean;
  httpOnly?: boolean;
  sameSite?: string;
}

interface StoredCookie extends Cookie {
  readonly created: number;
}

export class CookieJar {
  readonly #cookies = new Map<string, StoredCookie>();
  readonly #secureOverHttp: boolean;
  readonly #now: () => number;
  #sequence = 0;

  constructor(options: CookieJarOptions = {}) {
    this.#secureOverHttp = options.secureOverHttp ?? true;
    this.#now = options.now ?? Date.now;
  }

  /** Applies every Set-Cookie header of a response received from `url`. */
  storeFromResponse(url: string | URL, headers: Headers): void {
    for (const line of headers.getSetCookie()) this.storeSetCookie(url, line);
  }

  /** Applies one Set-Cookie header value as received from `url`. Returns false when a browser would ignore it. */
  storeSetCookie(url: string | URL, setCookie: string): boolean {
    const target = new URL(url);
    const [pair = '', ...attributes] = setCookie.split(';');
    const eq = pair.indexOf('=');
    if (eq <= 0) return false;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim(); // quotes, if any, are part of the value (RFC 6265 §4.1.1)
    if (name === '') return false;

    let path: string | undefined;
    let maxAge: number | undefined;
    let expires: number | undefined;
    let secure = false;
    let httpOnly = false;
    let sameSite: string | undefined;
    let domain: string | undefined;
    for (const attribute of attributes) {
      const at = attribute.indexOf('=');
      const key = (at < 0 ? attribute : attribute.slice(0, at)).trim().toLowerCase();
      const val = at < 0 ? '' : attribute.slice(at + 1).trim();
      switch (key) {
        case 'path':
          path = val.startsWith('/') ? val : undefined;
          break;
        case 'max-age':
          if (/^-?\d+$/.test(val)) maxAge = Number(val);
          break;
        case 'expires': {
          const at = Date.parse(val);
          if (!Number.isNaN(at)) expires = at;
          break;
        }
        case 'secure':
          secure = true;
          break;
        case 'httponly':
          httpOnly = true;
          break;
        case 'samesite':
          sameSite = val.toLowerCase();
          break;
        case 'domain':
          domain = val.replace(/^\./, '').toLowerCase() || undefined;
          break;
      }
    }

    const insecureOrigin = target.protocol !== 'https:' && !this.#secureOverHttp;
    if (secure && insecureOrigin) return false;
    if ((name.startsWith('__Secure-') || name.startsWith('__Host-')) && (!secure || insecureOrigin)) return false;
    if (name.startsWith('__Host-') && (domain !== undefined || path !== '/')) return false;

    const cookiePath = path ?? defaultPath(target.pathname);
    const key = cookieKey(target.host, cookiePath, name);
    const now = this.#now();
    const expiresAt = maxAge !== undefined ? now + maxAge * 1000 : expires;
    if (expiresAt !== undefined && expiresAt <= now) {
      this.#cookies.delete(key);
      return true;
    }
    this.#cookies.set(key, {
      name, value, host: target.host, path: cookiePath, expires: expiresAt, secure, httpOnly, sameSite, domain,
      created: this.#cookies.get(key)?.created ?? this.#sequence++,
    });
    return true;
  }

  /** The cookies a browser would send to `url`, in Cookie-header order (longest path first). */
  cookiesFor(url: string | URL): Cookie[] {
    const target = new URL(url);
    const sendSecure = target.protocol === 'https:' || this.#secureOverHttp;
    return this.#live()
      .filter((c) => c.host === target.host && pathMatches(target.pathname, c.path) && (!c.secure || sendSecure))
      .sort((a, b) => b.path.length - a.path.length || a.created - b.created)
      .map(publicCookie);
  }

  /** The Cookie request header for `url`, or undefined when there is nothing to send. */
  header(url: string | URL): string | undefined {
    const cookies = this.cookiesFor(url);
    return cookies.length === 0 ? undefined : cookies.map((c) => `${c.name}=${c.value}`).join('; ');
  }

  /** The cookie named `name` that would be sent to `url` (the most specific path wins). */
  get(url: string | URL, name: string): Cookie | undefined {
    return this.cookiesFor(url).find((c) => c.name === name);
  }

  /** Sets a cookie for the host of `url` as if that server had sent it. Path defaults to '/'. */
  set(url: string | URL, name: string, value: string, attributes: SetCookieAttributes = {}): void {
    const parts = [`${name}=${value}`, `Path=${attributes.path ?? '/'}`];
    if (attributes.maxAge !== undefined) parts.push(`Max-Age=${attributes.maxAge}`);
    if (attributes.expires !== undefined) parts.push(`Expires=${attributes.expires.toUTCString()}`);
    if (attributes.secure) parts.push('Secure');
    if (attributes.httpOnly) parts.push('HttpOnly');
    if (attributes.sameSite !== undefined) parts.push(`SameSite=${attributes.sameSite}`);
    if (!this.storeSetCookie(url, parts.join('; '))) throw new Error(`cookie ${name} was rejected for ${String(url)}`);
  }

  /** Deletes the cookies named `name` of the host of `url` (only the one at `path`, if given). Returns how many. */
  delete(url: string | URL, name: string, path?: string): number {
    const host = new URL(url).host;
    let deleted = 0;
    for (const [key, cookie] of [...this.#cookies]) {
      if (cookie.host === host && cookie.name === name && (path === undefined || cookie.path === path)) {
        this.#cookies.delete(key);
        deleted++;
      }
    }
    return deleted;
  }

  /** Every unexpired cookie, or only those of the host of `url`. */
  list(url?: string | URL): Cookie[] {
    const host = url === undefined ? undefined : new URL(url).host;
    return this.#live()
      .filter((c) => host === undefined || c.host === host)
      .sort((a, b) => a.created - b.created)
      .map(publicCookie);
  }

  clear(): void {
    this.#cookies.clear();
  }

  #live(): StoredCookie[] {
    const now = this.#now();
    const live: StoredCookie[] = [];
    for (const [key, cookie] of [...this.#cookies]) {
      if (cookie.expires !== undefined && cookie.expires <= now) this.#cookies.delete(key);
      else live.push(cookie);
    }
    return live;
  }
}

export interface BrowserRequest {
  readonly method: string;
  readonly url: string;
  readonly body?: string;
  readonly headers: Record<string, string>;
}

/** A response, with its body already read. */
export interface Page {
  readonly request: BrowserRequest;
  /** The URL that was fetched. */
  readonly url: string;
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
  /** The Location header resolved against `url`, for 3xx responses that have one. */
  readonly location: string | undefined;
}

export interface HtmlInput {
  readonly name: string;
  readonly type: string;
  readonly value: string;
}

export interface HtmlForm {
  readonly id: string | undefined;
  /** Absolute URL the form submits to. */
  readonly action: string;
  readonly method: 'GET' | 'POST';
  /** Named inputs that would be submitted (checkboxes/radios only when checked; buttons never). */
  readonly inputs: HtmlInput[];
}

export type FormBody = Record<string, string> | URLSearchParams | string;

export interface BrowserOptions extends CookieJarOptions {
  /** Headers sent with every request (a browser-like Accept and User-Agent unless overridden). */
  defaultHeaders?: Record<string, string>;
  /** Limit for followRedirects and loginAtIdp. Default 20. */
  maxRedirects?: number;
}

export interface SubmitOptions {
  /** Which form: its index among the page's forms, or a predicate. Default: the first. */
  form?: number | ((form: HtmlForm) => boolean);
  /** The clicked button, e.g. { name: 'action', value: 'cancel' }. */
  submitter?: { name: string; value: string };
}

export class Browser {
  readonly jar: CookieJar;
  readonly #defaultHeaders: Record<string, string>;
  readonly #maxRedirects: number;

  constructor(options: BrowserOptions = {}) {
    this.jar = new CookieJar(options);
    this.#defaultHeaders = lowerCaseKeys({
      accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
      'user-agent': 'oidc-authz-test-browser/1.0',
      ...options.defaultHeaders,
    });
    this.#maxRedirects = options.maxRedirects ?? 20;
  }

  async get(url: string | URL, headers: Record<string, string> = {}): Promise<Page> {
    return this.request('GET', url, { headers });
  }

  /** POSTs a form (object or URLSearchParams, sent urlencoded) or a raw string body. */
  async post(url: string | URL, body: FormBody, headers: Record<string, string> = {}): Promise<Page> {
    return this.request('POST', url, { body, headers });
  }

  async request(method: string, url: string | URL, init: { body?: FormBody; headers?: Record<string, string> } = {}): Promise<Page> {
    const target = new URL(url).href;
    const headers = { ...this.#defaultHeaders, ...lowerCaseKeys(init.headers ?? {}) };
    let body: string | undefined;
    if (typeof init.body === 'string') {
      body = init.body;
    } else if (init.body !== undefined) {
      body = new URLSearchParams(init.body).toString();
      headers['content-type'] ??= 'application/x-www-form-urlencoded';
    }
    const cookie = this.jar.header(target);
    if (cookie !== undefined && headers.cookie === undefined) headers.cookie = cookie;
    const request: BrowserRequest = { method, url: target, headers, ...(body === undefined ? {} : { body }) };

    const response = await sendHttp(method, target, headers, body);
    const text = response.body;
    this.jar.storeFromResponse(target, response.headers);
    const locationHeader = response.headers.get('location');
    const location = response.status >= 300 && response.status < 400 && locationHeader !== null
      ? new URL(locationHeader, target).href
      : undefined;
    return { request, url: target, status: response.status, headers: response.headers, body: text, location };
  }

  /** Follows one redirect as a browser does (303, and 301/302 after POST, become GET; 307/308 repeat the request). */
  async follow(page: Page): Promise<Page> {
    if (page.location === undefined) throw new Error(`not a redirect: ${page.status} from ${page.request.method} ${page.url}`);
    if ((page.status === 307 || page.status === 308) && page.request.method !== 'GET') {
      const { cookie: _cookie, ...headers } = page.request.headers;
      return this.request(page.request.method, page.location, { headers, ...(page.request.body === undefined ? {} : { body: page.request.body }) });
    }
    return this.get(page.location);
  }

  /**
   * Follows redirects until a non-redirect response, or until `stopAt(nextUrl)` is true: then the
   * redirect response pointing there is returned, and that URL is not fetched.
   */
  async followRedirects(page: Page, stopAt?: (next: URL) => boolean): Promise<Page> {
    let current = page;
    for (let hops = 0; current.location !== undefined; hops++) {
      if (hops >= this.#maxRedirects) throw new Error(`too many redirects, last to ${current.location}`);
      if (stopAt?.(new URL(current.location))) return current;
      current = await this.follow(current);
    }
    return current;
  }

  /** The forms of an HTML page. */
  forms(page: Page): HtmlForm[] {
    return parseForms(page.body, page.url);
  }

  /**
   * Submits a form of `page` with its current values (hidden inputs, pre-filled fields) overridden by
   * `values`. Sends Origin like a browser does. Does not follow the response.
   */
  async submitForm(page: Page, values: Record<string, string> = {}, options: SubmitOptions = {}): Promise<Page> {
    const forms = this.forms(page);
    const chosen = options.form;
    const form = typeof chosen === 'function' ? forms.find(chosen) : forms[chosen ?? 0];
    if (form === undefined) throw new Error(`no such form on ${page.url} (${page.status}); page starts: ${page.body.slice(0, 300)}`);
    const data = new URLSearchParams();
    const overridden = new Set(Object.keys(values));
    for (const input of form.inputs) if (!overridden.has(input.name)) data.append(input.name, input.value);
    for (const [name, value] of Object.entries(values)) data.append(name, value);
    if (options.submitter) data.append(options.submitter.name, options.submitter.value);
    if (form.method === 'GET') {
      const target = new URL(form.action);
      target.search = data.toString();
      return this.get(target);
    }
    return this.post(form.action, data, { origin: new URL(page.url).origin });
  }

  /**
   * Starts at `startUrl` (which redirects into the IdP's authorization endpoint, or is that endpoint),
   * follows the IdP's redirects, fills and posts its login form (the one with a password field: the
   * first text/email field gets `username`), and returns the first redirect target outside the IdP's
   * origin — the relying party's callback with `code` and `state` (or `error`) — without fetching it.
   * Without a login form (the IdP session already exists) it simply follows the redirects.
   *
   * The IdP's origin is the first origin the redirects reach that differs from `startUrl`'s, unless
   * `startUrl` is itself an authorization request (has client_id and response_type) or `idpOrigin` is given.
   * Throws when the IdP re-shows the login form (wrong credentials) or shows anything else.
   */
  async loginAtIdp(startUrl: string, username: string, password: string, options: { idpOrigin?: string } = {}): Promise<string> {
    const start = new URL(startUrl);
    let idpOrigin = options.idpOrigin === undefined ? undefined : new URL(options.idpOrigin).origin;
    if (idpOrigin === undefined && start.searchParams.has('client_id') && start.searchParams.has('response_type')) idpOrigin = start.origin;
    let page = await this.get(start);
    let submitted = false;
    for (let hops = 0; hops < this.#maxRedirects; hops++) {
      if (page.location !== undefined) {
        const next = new URL(page.location);
        if (idpOrigin === undefined && next.origin !== start.origin) idpOrigin = next.origin;
        else if (idpOrigin !== undefined && next.origin !== idpOrigin) return next.href;
        page = await this.follow(page);
        continue;
      }
      const forms = this.forms(page);
      const index = forms.findIndex((f) => f.inputs.some((i) => i.type === 'password'));
      const form = forms[index];
      if (form === undefined) {
        throw new Error(`loginAtIdp: expected a redirect or a login form at ${page.url}, got ${page.status}: ${visibleText(page.body)}`);
      }
      if (submitted) {
        throw new Error(`loginAtIdp: the IdP did not accept ${username} (${page.status}): ${visibleText(page.body)}`);
      }
      idpOrigin ??= new URL(page.url).origin;
      const passwordField = form.inputs.find((i) => i.type === 'password')!.name;
      const usernameField = form.inputs.find((i) => i.type === 'text' || i.type === 'email')?.name ?? 'username';
      page = await this.submitForm(page, { [usernameField]: username, [passwordField]: password }, { form: index });
      submitted = true;
    }
    throw new Error(`loginAtIdp: too many redirects starting at ${startUrl}`);
  }
}

export interface RawExchange {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
}

/**
 * One HTTP/1.1 exchange with node:http, sending exactly the given headers. (Node's fetch cannot: it
 * forces `sec-fetch-mode: cors` and its own Host, and the service tells page loads from API calls by
 * such headers.) `headers` as header lines keeps their order, repeats and case (a `host` line is added
 * from `url` when there is none); `target` is the request-target as written (dot segments, encodings),
 * by default the path and query of `url`.
 */
export function sendHttp(method: string, url: string, headers: Record<string, string> | ReadonlyArray<readonly [string, string]>, body?: string, target?: string): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const to = new URL(url);
    const lines: Array<readonly [string, string]> = Array.isArray(headers) ? [...(headers as ReadonlyArray<readonly [string, string]>)] : Object.entries(headers);
    if (!lines.some(([name]) => name.toLowerCase() === 'host')) lines.unshift(['host', to.host]);
    if (body !== undefined) lines.push(['content-length', String(Buffer.byteLength(body))]);
    // A fresh connection per request (servers in tests come and go on the same port), and room for the
    // large identity headers a check can answer with.
    const req = httpRequest({
      host: to.hostname, port: to.port, method, path: target ?? `${to.pathname}${to.search}`,
      headers: lines.flat(), agent: false, maxHeaderSize: 256 * 1024,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const responseHeaders = new Headers();
        const raw = res.rawHeaders;
        for (let i = 0; i < raw.length; i += 2) responseHeaders.append(raw[i]!, raw[i + 1]!);
        resolve({ status: res.statusCode ?? 0, headers: responseHeaders, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Regex-based: good for the simple, well-formed pages of our IdP and service, not for arbitrary HTML. */
export function parseForms(html: string, baseUrl: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form\s*>/gi)) {
    const attributes = parseAttributes(match[1] ?? '');
    const content = match[2] ?? '';
    const inputs: HtmlInput[] = [];
    for (const input of content.matchAll(/<input\b([^>]*)>/gi)) {
      const a = parseAttributes(input[1] ?? '');
      const name = a.get('name');
      const type = (a.get('type') ?? 'text').toLowerCase();
      if (name === undefined || name === '' || a.has('disabled')) continue;
      if (['submit', 'button', 'image', 'reset', 'file'].includes(type)) continue;
      if ((type === 'checkbox' || type === 'radio') && !a.has('checked')) continue;
      inputs.push({ name, type, value: a.get('value') ?? (type === 'checkbox' || type === 'radio' ? 'on' : '') });
    }
    for (const textarea of content.matchAll(/<textarea\b([^>]*)>([\s\S]*?)<\/textarea\s*>/gi)) {
      const name = parseAttributes(textarea[1] ?? '').get('name');
      if (name) inputs.push({ name, type: 'textarea', value: decodeEntities(textarea[2] ?? '') });
    }
    const method = (attributes.get('method') ?? 'get').toUpperCase() === 'POST' ? 'POST' : 'GET';
    forms.push({ id: attributes.get('id'), action: new URL(attributes.get('action') || baseUrl, baseUrl).href, method, inputs });
  }
  return forms;
}

function parseAttributes(source: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const m of source.matchAll(/([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    attributes.set(m[1]!.toLowerCase(), decodeEntities(m[2] ?? m[3] ?? m[4] ?? ''));
  }
  return attributes;
}

const NAMED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, entity: string) => {
    if (entity[0] === '#') {
      const code = entity[1] === 'x' || entity[1] === 'X' ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10);
      return Number.isFinite(code) && code >= 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return NAMED_ENTITIES[entity.toLowerCase()] ?? whole;
  });
}

/** A page's text without tags, shortened, for error messages. */
export function visibleText(html: string, max = 300): string {
  const text = decodeEntities(html.replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, ' ').replace(/<[^>]+>/g, ' ')).replace(/\s+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function defaultPath(requestPath: string): string {
  if (!requestPath.startsWith('/')) return '/';
  const slash = requestPath.lastIndexOf('/');
  return slash <= 0 ? '/' : requestPath.slice(0, slash);
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

function cookieKey(host: string, path: string, name: string): string {
  return `${host}\u0000${path}\u0000${name}`;
}

function publicCookie({ created: _created, ...cookie }: StoredCookie): Cookie {
  return cookie;
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}
