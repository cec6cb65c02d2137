/**
 * The Redis client for session.store "redis" (ioredis: one client for a single Redis, Sentinel and Cluster,
 * with TLS, ACL users and per-command timeouts). Commands never queue while Redis is away
 * (enableOfflineQueue off) and never wait past commandTimeout: a check fails fast with 503 instead.
 */
import { readFileSync } from 'node:fs';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { ConfigError } from '../config/load.js';
import type { RedisConfig } from '../config/schema.js';
import { traceRedis } from '../tracing/edge.js';

export type RedisClient = Redis | Cluster;

function readSecretFile(field: string, file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw new ConfigError('config', [`${field}: cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`]);
  }
  if (text.length === 0) throw new ConfigError('config', [`${field}: the file is empty`]);
  return text;
}

function hostPort(node: string): { host: string; port: number } {
  const at = node.lastIndexOf(':');
  return { host: node.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(node.slice(at + 1)) };
}

/** Reconnect quickly at first, then every 2 s at most, for as long as it takes. */
const retryStrategy = (attempt: number) => Math.min(100 * attempt, 2_000);

/** The client for session.redis; with tracing on, its commands inside a traced check are spans (src/tracing). */
export function connectRedis(config: RedisConfig): RedisClient {
  return traceRedis(clientFor(config));
}

function clientFor(config: RedisConfig): RedisClient {
  const password = config.passwordFile === undefined ? undefined : readSecretFile('session.redis.passwordFile', config.passwordFile);
  const url = config.url === undefined ? undefined : new URL(config.url);
  const tlsWanted = url?.protocol === 'rediss:' || (config.tls !== undefined && config.tls.enabled);
  const tls = tlsWanted
    ? {
        ...(config.tls?.caFile === undefined ? {} : { ca: readSecretFile('session.redis.tls.caFile', config.tls.caFile) }),
        ...(config.tls?.serverName === undefined ? {} : { servername: config.tls.serverName }),
      }
    : undefined;
  const common: RedisOptions = {
    username: config.username,
    password,
    ...(tls === undefined ? {} : { tls }),
    connectTimeout: config.connectTimeout,
    commandTimeout: config.commandTimeout,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy,
    lazyConnect: true,
  };
  if (url !== undefined) {
    const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0;
    if (!Number.isInteger(db) || db < 0) throw new ConfigError('config', [`session.redis.url: "${url.pathname.slice(1)}" is not a database number`]);
    return new Redis({
      ...common,
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? 6379 : Number(url.port),
      db,
      // Behind a name that fails over (a cloud endpoint, a Service in front of a replica set), the old
      // primary answers READONLY until the name moves: reconnect, which finds the new one.
      reconnectOnError: (error) => error.message.startsWith('READONLY'),
    });
  }
  if (config.sentinel !== undefined) {
    const sentinelPassword = config.sentinel.passwordFile === undefined ? undefined : readSecretFile('session.redis.sentinel.passwordFile', config.sentinel.passwordFile);
    return new Redis({
      ...common,
      name: config.sentinel.name,
      sentinels: config.sentinel.nodes.map(hostPort),
      sentinelPassword,
      ...(tls === undefined ? {} : { sentinelTLS: tls, enableTLSForSentinelMode: true }),
    });
  }
  const cluster: ClusterOptions = {
    redisOptions: { username: common.username, password, ...(tls === undefined ? {} : { tls }), connectTimeout: config.connectTimeout, commandTimeout: config.commandTimeout, maxRetriesPerRequest: 1 },
    enableOfflineQueue: false,
    clusterRetryStrategy: retryStrategy,
    lazyConnect: true,
  };
  return new Cluster(config.cluster!.nodes.map(hostPort), cluster);
}
