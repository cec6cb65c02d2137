/**
 * The OpenTelemetry side of tracing (contract.ts), imported by startTracing() only when tracing is on.
 * Nothing here is registered globally (no global tracer provider, context manager or propagator): spans are
 * started with explicit parents, and the check's span is carried to the I/O edges by this module's own
 * AsyncLocalStorage context manager. Spans leave in batches over OTLP/HTTP (JSON); an export that fails is
 * counted and its spans dropped, and no answer ever waits for an export.
 */
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, trace, type Context, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type ReadableSpan, type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { Counter } from 'prom-client';
import type { Decision } from '../check/decide.js';
import type { Responder } from '../check/respond.js';
import { ConfigError } from '../config/load.js';
import type { TracingConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import {
  CHECK_ATTRIBUTES, EDGE_ATTRIBUTES, MAX_PATH_CHARS, SPAN_NAMES,
  type Attributes, type CheckHandler, type CheckTracer, type EdgeOutcome, type EdgeTracer, type RedisCommandSender, type Tracing,
} from './contract.js';

export interface TracingDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now?: () => number;
}

/** At most one "trace export failed" line per this time; the failures in between are counted in it. */
const EXPORT_FAILURE_LOG_INTERVAL_MS = 60_000;
const MAX_ERROR_MESSAGE_CHARS = 300;

/** `Name: value` lines (blank lines and # comments skipped). Values never reach a log or an error. */
export function readHeadersFile(file: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError('config', [`tracing.headersFile: cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`]);
  }
  const headers: Record<string, string> = {};
  text.split(/\r?\n/).forEach((line, index) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const colon = trimmed.indexOf(':');
    const name = colon <= 0 ? '' : trimmed.slice(0, colon).trim();
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) throw new ConfigError('config', [`tracing.headersFile: line ${index + 1} is not "Name: value"`]);
    headers[name.toLowerCase()] = trimmed.slice(colon + 1).trim();
  });
  return headers;
}

/** Counts and reports failed exports; passes every result on unchanged (the processor drops those spans). */
class CountingExporter implements SpanExporter {
  private lastLineAt = -Infinity;
  private unreported = 0;

  constructor(
    private readonly inner: SpanExporter,
    private readonly failures: Counter,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) this.failed(spans.length, result.error);
      resultCallback(result);
    });
  }

  private failed(spans: number, error: Error | undefined): void {
    this.failures.inc();
    this.unreported++;
    const now = this.now();
    if (now - this.lastLineAt < EXPORT_FAILURE_LOG_INTERVAL_MS) return;
    this.lastLineAt = now;
    this.logger.warn('trace export failed; its spans are dropped', {
      error: (error?.message ?? 'unknown').slice(0, MAX_ERROR_MESSAGE_CHARS),
      spans,
      failedExports: this.unreported,
    });
    this.unreported = 0;
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** What the check's span records of its decision (the metric labels; never an identity or a token). */
function decisionAttributes(span: Span, decision: Decision): void {
  span.setAttribute(CHECK_ATTRIBUTES.decision, decision.kind);
  span.setAttribute(CHECK_ATTRIBUTES.reason, decision.reason);
  span.setAttribute(CHECK_ATTRIBUTES.rule, decision.rule?.name ?? 'none');
  if (decision.kind === 'unauthorized' && decision.issuer !== undefined) span.setAttribute(CHECK_ATTRIBUTES.issuer, decision.issuer.slice(0, MAX_PATH_CHARS));
  if (decision.exchangeError !== undefined) span.setAttribute(CHECK_ATTRIBUTES.exchangeError, decision.exchangeError);
}

export function createTracing(config: TracingConfig, deps: TracingDeps): Tracing {
  const { logger, metrics } = deps;
  const now = deps.now ?? Date.now;
  const failures = new Counter({
    name: 'oidc_authz_trace_export_failures_total',
    help: 'Span exports to tracing.endpoint that failed (their spans are dropped); answers never wait for exports',
    registers: [metrics.registry],
  });
  const headers = { ...config.headers, ...(config.headersFile === undefined ? {} : readHeadersFile(config.headersFile)) };
  const exporter = new CountingExporter(
    new OTLPTraceExporter({ url: config.endpoint!, headers, timeoutMillis: config.timeout }),
    failures,
    logger,
    now,
  );
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
    spanProcessors: [new BatchSpanProcessor(exporter, { exportTimeoutMillis: config.timeout })],
    forceFlushTimeoutMillis: config.timeout,
  });
  const tracer = provider.getTracer('oidc-authz');
  const contexts = new AsyncLocalStorageContextManager().enable();
  const propagator = new W3CTraceContextPropagator();

  /** The check span of each response under way (the responder finds it from `res`). */
  const checkSpans = new WeakMap<ServerResponse, Span>();

  const check: CheckTracer = {
    handler(handle: CheckHandler, prefixLength: number): CheckHandler {
      return (req, res) => {
        const parent = propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
        const target = req.url ?? '';
        const queryAt = target.indexOf('?', prefixLength);
        const attributes: Attributes = {
          [CHECK_ATTRIBUTES.method]: req.method ?? 'GET',
          [CHECK_ATTRIBUTES.host]: req.headers.host ?? '',
          [CHECK_ATTRIBUTES.path]: target.slice(prefixLength, queryAt === -1 ? undefined : queryAt).slice(0, MAX_PATH_CHARS),
        };
        const span = tracer.startSpan(SPAN_NAMES.check, { kind: SpanKind.SERVER, attributes }, parent);
        checkSpans.set(res, span);
        res.once('close', () => {
          span.setAttribute(CHECK_ATTRIBUTES.status, res.statusCode);
          // A 503 (a dependency down, or the handler failed and answered internal_error itself) is an error.
          if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: `answered ${res.statusCode}` });
          span.end();
        });
        contexts.with(trace.setSpan(parent, span), handle, undefined, req, res);
      };
    },
    responder(respond: Responder): Responder {
      return (res, decision) => {
        const span = checkSpans.get(res);
        if (span !== undefined && span.isRecording()) decisionAttributes(span, decision);
        respond(res, decision);
      };
    },
  };

  const finishEdge = <T>(span: Span, outcome: ((value: T) => EdgeOutcome) | undefined, value: T): T => {
    if (outcome !== undefined) {
      const described = outcome(value);
      span.setAttribute(EDGE_ATTRIBUTES.result, described.result);
      if (described.error !== undefined) span.setAttribute(EDGE_ATTRIBUTES.error, described.error);
      if (described.attributes !== undefined) span.setAttributes(described.attributes);
      if (described.failed === true) span.setStatus({ code: SpanStatusCode.ERROR, message: described.error ?? described.result });
    } else {
      span.setAttribute(EDGE_ATTRIBUTES.result, 'ok');
    }
    span.end();
    return value;
  };
  const failEdge = (span: Span, error: unknown): never => {
    span.setAttribute(EDGE_ATTRIBUTES.result, 'error');
    span.setAttribute(EDGE_ATTRIBUTES.error, error instanceof Error ? error.name : 'error');
    // Our own errors name URLs and statuses (jwks.ts, introspection.ts); never a token or a header.
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error instanceof Error ? error.message : String(error)).slice(0, MAX_ERROR_MESSAGE_CHARS) });
    span.end();
    throw error;
  };

  const edges: EdgeTracer = {
    span<T>(name: string, attributes: Attributes, work: () => Promise<T>, outcome?: (value: T) => EdgeOutcome): Promise<T> {
      const parent = contexts.active();
      const span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, parent);
      let running: Promise<T>;
      try {
        running = contexts.with(trace.setSpan(parent, span), work);
      } catch (error) {
        return Promise.reject(failEdge(span, error));
      }
      return running.then((value) => finishEdge(span, outcome, value), (error: unknown) => failEdge(span, error));
    },
    instrumentRedis(client: RedisCommandSender): void {
      const send = client.sendCommand.bind(client) as (command: RedisCommand, ...rest: unknown[]) => unknown;
      (client as unknown as { sendCommand: typeof send }).sendCommand = (command, ...rest) => {
        const parent: Context = contexts.active();
        const parentSpan = trace.getSpan(parent);
        // Only inside a traced span: ioredis' own commands and background retries are no one's request.
        if (parentSpan === undefined || !parentSpan.isRecording() || typeof command?.name !== 'string') return send(command, ...rest);
        const operation = command.name.toUpperCase();
        const span = tracer.startSpan(`${SPAN_NAMES.redisPrefix}${operation}`, {
          kind: SpanKind.CLIENT,
          attributes: { [EDGE_ATTRIBUTES.dbSystem]: 'redis', [EDGE_ATTRIBUTES.dbOperation]: operation },
        }, parent);
        command.promise.then(
          () => {
            span.setAttribute(EDGE_ATTRIBUTES.result, 'ok');
            span.end();
          },
          (error: unknown) => {
            span.setAttribute(EDGE_ATTRIBUTES.result, 'error');
            span.setAttribute(EDGE_ATTRIBUTES.error, error instanceof Error ? error.name : 'error');
            // ioredis' messages name the command and the connection, never its arguments.
            span.setStatus({ code: SpanStatusCode.ERROR, message: (error instanceof Error ? error.message : String(error)).slice(0, MAX_ERROR_MESSAGE_CHARS) });
            span.end();
          },
        );
        return send(command, ...rest);
      };
    },
  };

  let stopped: Promise<void> | null = null;
  return {
    check,
    edges,
    flush: () => provider.forceFlush().catch(() => undefined),
    shutdown() {
      stopped ??= provider.shutdown().catch((error: unknown) => {
        logger.warn('trace export at shutdown failed', { error: (error instanceof Error ? error.message : String(error)).slice(0, MAX_ERROR_MESSAGE_CHARS) });
      }).finally(() => contexts.disable());
      return stopped;
    },
  };
}

/** The part of an ioredis Command the tracer reads. */
interface RedisCommand {
  readonly name: string;
  readonly promise: Promise<unknown>;
}
