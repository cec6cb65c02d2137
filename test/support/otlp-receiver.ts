/**
 * A minimal OTLP/HTTP trace receiver on 127.0.0.1 (what a collector's otlp receiver does, for
 * `POST /v1/traces`): it takes JSON (our exporter, @opentelemetry/exporter-trace-otlp-http) and protobuf
 * (Envoy's OpenTelemetry tracer), answers success, and keeps every span it was sent, flattened. The
 * protobuf side reads the wire format of opentelemetry-proto's ExportTraceServiceRequest, for the fields
 * a test looks at (ids, name, kind, attributes, status, service.name).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type AttributeValue = string | number | boolean;

export interface ReceivedSpan {
  /** 32 lower-case hex digits. */
  readonly traceId: string;
  /** 16 lower-case hex digits. */
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  readonly kind: number;
  /** The resource's service.name. */
  readonly service: string;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  readonly statusCode: number;
}

export interface ReceivedRequest {
  readonly contentType: string;
  readonly headers: IncomingHttpHeaders;
  /** The request body as text (protobuf: latin1), for "no secret in what was sent" checks. */
  readonly text: string;
}

export interface OtlpReceiver {
  /** http://127.0.0.1:<port>/v1/traces */
  readonly url: string;
  readonly port: number;
  readonly spans: ReceivedSpan[];
  readonly requests: ReceivedRequest[];
  /** The first span (already received or still to come) that `match` accepts; rejects after `timeoutMs`. */
  waitFor(match: (span: ReceivedSpan) => boolean, what: string, timeoutMs?: number): Promise<ReceivedSpan>;
  stop(): Promise<void>;
}

export const SPAN_KIND = { internal: 1, server: 2, client: 3 } as const;

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: ReceivedRequest[] = [];
  const waiters = new Set<{ match: (span: ReceivedSpan) => boolean; resolve: (span: ReceivedSpan) => void }>();

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      if (req.method !== 'POST' || req.url !== '/v1/traces') return void res.writeHead(404).end();
      requests.push({ contentType, headers: req.headers, text: body.toString(contentType === 'application/json' ? 'utf8' : 'latin1') });
      let received: ReceivedSpan[];
      try {
        received = contentType === 'application/json' ? spansOfJson(JSON.parse(body.toString('utf8'))) : spansOfProtobuf(body);
      } catch (error) {
        return void res.writeHead(400, { 'content-type': 'text/plain' }).end(String(error));
      }
      spans.push(...received);
      for (const span of received) {
        for (const waiter of [...waiters]) {
          if (waiter.match(span)) {
            waiters.delete(waiter);
            waiter.resolve(span);
          }
        }
      }
      // An empty ExportTraceServiceResponse: full success.
      if (contentType === 'application/json') res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    port,
    spans,
    requests,
    waitFor(match, what, timeoutMs = 15_000) {
      const seen = spans.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = {
          match,
          resolve: (span: ReceivedSpan) => {
            clearTimeout(timer);
            resolve(span);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no span "${what}" within ${timeoutMs} ms; received: ${spans.map((s) => `${s.service}/${s.name}`).join(', ') || 'none'}`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

// ---- JSON (OTLP/HTTP JSON encoding: ids in hex, 64-bit integers as strings) ----

interface JsonKeyValue { key: string; value?: Record<string, unknown> }

function jsonValue(value: Record<string, unknown> | undefined): AttributeValue {
  if (value === undefined) return '';
  if (typeof value.stringValue === 'string') return value.stringValue;
  if (typeof value.boolValue === 'boolean') return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return Number(value.doubleValue);
  return JSON.stringify(value);
}

function jsonAttributes(list: JsonKeyValue[] | undefined): Record<string, AttributeValue> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, jsonValue(kv.value)]));
}

/** Hex as it is, or base64 (some encoders) turned into hex. */
function jsonId(id: unknown): string {
  if (typeof id !== 'string' || id === '') return '';
  return /^[0-9a-f]+$/i.test(id) && (id.length === 32 || id.length === 16) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');
}

function spansOfJson(request: { resourceSpans?: Array<{ resource?: { attributes?: JsonKeyValue[] }; scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }> }> }): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const resourceSpans of request.resourceSpans ?? []) {
    const service = String(jsonAttributes(resourceSpans.resource?.attributes)['service.name'] ?? '');
    for (const scope of resourceSpans.scopeSpans ?? []) {
      for (const span of scope.spans ?? []) {
        out.push({
          traceId: jsonId(span.traceId),
          spanId: jsonId(span.spanId),
          parentSpanId: jsonId(span.parentSpanId),
          name: String(span.name),
          kind: Number(span.kind ?? 0),
          service,
          attributes: jsonAttributes(span.attributes as JsonKeyValue[] | undefined),
          statusCode: Number((span.status as { code?: unknown } | undefined)?.code ?? 0),
        });
      }
    }
  }
  return out;
}

// ---- protobuf wire format ----

type Field = { number: number; wire: 0; value: bigint } | { number: number; wire: 1 | 5; value: Buffer } | { number: number; wire: 2; value: Buffer };

function readVarint(buffer: Buffer, at: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (at >= buffer.length) throw new Error('truncated varint');
    const byte = buffer[at++]!;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, at];
    shift += 7n;
  }
}

/** The fields of one message, in order. */
function fieldsOf(buffer: Buffer): Field[] {
  const fields: Field[] = [];
  let at = 0;
  while (at < buffer.length) {
    const [tag, next] = readVarint(buffer, at);
    at = next;
    const number = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (wire === 0) {
      const [value, after] = readVarint(buffer, at);
      fields.push({ number, wire, value });
      at = after;
    } else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      fields.push({ number, wire, value: buffer.subarray(at, at + size) });
      at += size;
    } else if (wire === 2) {
      const [length, after] = readVarint(buffer, at);
      const end = after + Number(length);
      if (end > buffer.length) throw new Error('truncated field');
      fields.push({ number, wire, value: buffer.subarray(after, end) });
      at = end;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
  return fields;
}

const bytesOf = (fields: Field[], number: number): Buffer[] => fields.filter((f): f is Extract<Field, { wire: 2 }> => f.number === number && f.wire === 2).map((f) => f.value);
const firstBytes = (fields: Field[], number: number): Buffer | undefined => bytesOf(fields, number)[0];
const varintOf = (fields: Field[], number: number): bigint => fields.find((f): f is Extract<Field, { wire: 0 }> => f.number === number && f.wire === 0)?.value ?? 0n;

/** AnyValue: string_value 1, bool_value 2, int_value 3, double_value 4. */
function protobufValue(buffer: Buffer | undefined): AttributeValue {
  if (buffer === undefined) return '';
  const field = fieldsOf(buffer)[0];
  if (field === undefined) return '';
  if (field.number === 1 && field.wire === 2) return field.value.toString('utf8');
  if (field.number === 2 && field.wire === 0) return field.value !== 0n;
  if (field.number === 3 && field.wire === 0) return Number(BigInt.asIntN(64, field.value));
  if (field.number === 4 && field.wire === 1) return field.value.readDoubleLE(0);
  return `(${field.number})`;
}

/** repeated KeyValue { string key = 1; AnyValue value = 2; } */
function protobufAttributes(list: Buffer[]): Record<string, AttributeValue> {
  return Object.fromEntries(list.map((kv) => {
    const fields = fieldsOf(kv);
    return [firstBytes(fields, 1)?.toString('utf8') ?? '', protobufValue(firstBytes(fields, 2))];
  }));
}

/**
 * ExportTraceServiceRequest { ResourceSpans resource_spans = 1 } → ResourceSpans { Resource resource = 1;
 * ScopeSpans scope_spans = 2 } → ScopeSpans { Span spans = 2 } → Span { trace_id 1, span_id 2,
 * parent_span_id 4, name 5, kind 6, attributes 9, status 15 { code 3 } }.
 */
function spansOfProtobuf(body: Buffer): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const resourceSpans of bytesOf(fieldsOf(body), 1)) {
    const fields = fieldsOf(resourceSpans);
    const resource = firstBytes(fields, 1);
    const service = String(protobufAttributes(resource === undefined ? [] : bytesOf(fieldsOf(resource), 1))['service.name'] ?? '');
    for (const scopeSpans of bytesOf(fields, 2)) {
      for (const span of bytesOf(fieldsOf(scopeSpans), 2)) {
        const s = fieldsOf(span);
        const status = firstBytes(s, 15);
        out.push({
          traceId: firstBytes(s, 1)?.toString('hex') ?? '',
          spanId: firstBytes(s, 2)?.toString('hex') ?? '',
          parentSpanId: firstBytes(s, 4)?.toString('hex') ?? '',
          name: firstBytes(s, 5)?.toString('utf8') ?? '',
          kind: Number(varintOf(s, 6)),
          service,
          attributes: protobufAttributes(bytesOf(s, 9)),
          statusCode: status === undefined ? 0 : Number(varintOf(fieldsOf(status), 3)),
        });
      }
    }
  }
  return out;
}
