/**
 * The I/O edges' side of tracing (contract.ts): one process-wide slot that startTracing fills when
 * tracing is on. With it empty (the default) an edge costs one null check and runs its work as it is.
 * No OpenTelemetry import here: the SDK is loaded only when tracing is on.
 */
import type { Attributes, EdgeOutcome, EdgeTracer, RedisCommandSender } from './contract.js';

let installed: EdgeTracer | null = null;
/** Every tracer started and not yet stopped, oldest first: the last is in force (a process runs one service; tests may run several). */
const started: EdgeTracer[] = [];

/** Puts `edges` in force for every edge of this process; the function returned takes it out again. */
export function installEdgeTracer(edges: EdgeTracer): () => void {
  started.push(edges);
  installed = edges;
  return () => {
    const at = started.indexOf(edges);
    if (at !== -1) started.splice(at, 1);
    installed = started.at(-1) ?? null;
  };
}

/**
 * Runs `work` (one call to the IdP) in a span named `name` whose parent is the span in force (the check
 * that caused the call), when tracing is on; `outcome` describes the result for the span.
 */
export function traced<T>(name: string, attributes: Attributes, work: () => Promise<T>, outcome?: (value: T) => EdgeOutcome): Promise<T> {
  const edges = installed;
  return edges === null ? work() : edges.span(name, attributes, work, outcome);
}

/** A Redis client traces its commands when tracing is on at the time it is made. */
export function traceRedis<C extends RedisCommandSender>(client: C): C {
  installed?.instrumentRedis(client);
  return client;
}
