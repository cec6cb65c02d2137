/**
 * Tracing's contract, in one place: what is traced, under which names, with which attributes, how each
 * span finds its parent, and what never goes into a span. The SDK side (sdk.ts, loaded only when
 * `tracing.enabled`) and the call sites follow it; this file has no runtime dependency on OpenTelemetry.
 *
 * Spans
 * - `check` (kind SERVER): one per check Envoy asks for. Parent: the `traceparent` request header (W3C
 *   Trace Context) when it holds a valid one. Envoy, when it traces, sends its ext_authz span's context
 *   there (it is in includeRequestHeadersInCheck, src/envoy-contract.ts); otherwise a client's own
 *   traceparent passes through; without one the check starts a trace. Sampling is parent-based: a caller's
 *   sampled flag decides, `tracing.sampleRatio` decides for traces that start here.
 *   Attributes: CHECK_ATTRIBUTES below, set when the check answers; the span ends when the response closes.
 * - `jwks fetch`, `session refresh`, `token exchange`, `token introspection` (kind CLIENT): one per call
 *   to the IdP (discovery included), at the I/O edge (jwks.ts, oidc/session-claims.ts,
 *   token-exchange/exchanger.ts, authn/introspection.ts). Parent: the span in force where the call starts,
 *   i.e. the check that caused it; a call shared by several checks (single-flight) is the child of the
 *   one that started it. A call outside any check starts its own trace.
 * - `redis <COMMAND>` (kind CLIENT), one per Redis command (session.store "redis"), only inside a traced
 *   span (a check or a refresh): ioredis' own commands (connection checks) and retries outside any
 *   request are not traced.
 *
 * Never in a span: tokens, cookies, secrets, header values, the query string, claims (user ids and emails
 * included: a trace backend is not the place for personal data), IdP error descriptions (free text from
 * the IdP), Redis keys and arguments. Error details are bounded labels (EDGE_ATTRIBUTES.error) and our own
 * messages, which name URLs and statuses only.
 *
 * Off (the default): nothing is loaded (the OpenTelemetry packages are imported by startTracing() only
 * when enabled), the check handler is the untraced function itself, and an edge is one null check.
 * The check's tracer is the service's (CheckHandlerOptions.tracer); the edges' is process-wide (edge.ts), as
 * a process runs one service: with several (tests), the last started is in force until it stops.
 * Export failures never change an answer: spans of a failed export are dropped, each failed export is
 * counted in oidc_authz_trace_export_failures_total and logged at most once a minute.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Responder } from '../check/respond.js';

export const SPAN_NAMES = {
  check: 'check',
  jwksFetch: 'jwks fetch',
  sessionRefresh: 'session refresh',
  tokenExchange: 'token exchange',
  introspection: 'token introspection',
  /** Followed by the command's name: "redis GET". */
  redisPrefix: 'redis ',
} as const;

/** The check span's attributes (OpenTelemetry semantic conventions where one exists). */
export const CHECK_ATTRIBUTES = {
  /** The original request's method. */
  method: 'http.request.method',
  /** The original request's Host (as sent, port kept). */
  host: 'server.address',
  /** The original request's path as sent, without the query, at most MAX_PATH_CHARS. */
  path: 'url.path',
  /** Our answer's status. */
  status: 'http.response.status_code',
  /** allow, login, unauthorized, forbidden, bad_request, unavailable (the `decision` metric label). */
  decision: 'oidc_authz.decision',
  /** Why (the `reason` metric label): bearer, cookie, anonymous, no_credentials, bad_signature, … */
  reason: 'oidc_authz.reason',
  /** The rule that decided, or "none" (the `rule` metric label). */
  rule: 'oidc_authz.rule',
  /** The issuer a refused token named (unknown_issuer and the like); issuer URLs are configuration, not secrets. */
  issuer: 'oidc_authz.issuer',
  /** A failed token exchange's bounded error label (token-exchange/contract.ts EXCHANGE_ERRORS). */
  exchangeError: 'oidc_authz.exchange_error',
} as const;

/** Attributes of the I/O edge spans. */
export const EDGE_ATTRIBUTES = {
  /** The issuer (or IdP) the call goes to. */
  issuer: 'oidc_authz.issuer',
  /** A bounded outcome: ok, error; refresh: ok, rejected, unavailable; exchange: ok, refused, unavailable; introspection: active, inactive, unavailable. */
  result: 'oidc_authz.result',
  /** A bounded error label (metric label values: timeout, unreachable, invalid_grant, …), never free text. */
  error: 'error.type',
  /** token exchange: the audience and scope asked for (configuration). */
  audience: 'oidc_authz.exchange.audience',
  scope: 'oidc_authz.exchange.scope',
  /** jwks fetch: how many keys the set holds. */
  keys: 'oidc_authz.jwks.keys',
  /** redis: "redis", and the command's name (GET, SET, EVAL, …); never its keys or arguments. */
  dbSystem: 'db.system.name',
  dbOperation: 'db.operation.name',
} as const;

export const MAX_PATH_CHARS = 1024;

export type AttributeValue = string | number | boolean;
export type Attributes = Readonly<Record<string, AttributeValue>>;

/** How an edge call ended, for its span: `failed` marks the span as an error. */
export interface EdgeOutcome {
  readonly result: string;
  readonly error?: string;
  readonly failed?: boolean;
  /** More attributes (EDGE_ATTRIBUTES names). */
  readonly attributes?: Attributes;
}

export type CheckHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** What the check handler asks of tracing: two wrappers, applied once when the handler is made. */
export interface CheckTracer {
  /** The handler, run inside a `check` span whose parent comes from the request's traceparent. */
  handler(handle: CheckHandler, prefixLength: number): CheckHandler;
  /** The responder, recording the decision on the check's span. */
  responder(respond: Responder): Responder;
}

/** The client object of ioredis (Redis or Cluster): every command goes through sendCommand. */
export interface RedisCommandSender {
  sendCommand(...args: never[]): unknown;
}

/** What the I/O edges ask of tracing (installed process-wide by startTracing, edge.ts). */
export interface EdgeTracer {
  span<T>(name: string, attributes: Attributes, work: () => Promise<T>, outcome?: (value: T) => EdgeOutcome): Promise<T>;
  /** Makes `client` trace its commands (inside traced spans only). */
  instrumentRedis(client: RedisCommandSender): void;
}

/** A running tracer: the check side, the edge side, and the flush at shutdown. */
export interface Tracing {
  readonly check: CheckTracer;
  readonly edges: EdgeTracer;
  /** Exports what is buffered now (bounded by tracing.timeout); never throws. */
  flush(): Promise<void>;
  /** Exports what is buffered (bounded by tracing.timeout) and stops; never throws. */
  shutdown(): Promise<void>;
}
