import { redactUrls } from '../util/redact.js';
import type { Logger } from 'pino';
import type { NatsConnection } from '@nats-io/nats-core';
import type { SharedResources, Lease } from '../graph/shared-resources.js';
import { UserError } from '../util/errors.js';

// One NATS connection per process and server list, shared by the fleet's nodes and its lease
// keeper. Credentials come from the environment (or the URL), never from logs: DCL_NATS_TOKEN,
// or DCL_NATS_USER + DCL_NATS_PASSWORD; tls:// URLs connect with TLS (DCL_NATS_CA: a CA file).
// The client reconnects for ever, to any server of the list (a cluster survives a node).

export class FleetConfigError extends UserError {}

export interface NatsTarget {
  /** host:port entries, credentials removed. */
  readonly servers: string[];
  readonly tls: boolean;
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
}

/** Parses `nats://[user:pass@]host:port[,host:port...]` (or tls://) and adds credentials from the environment. */
export function natsTarget(url: string, env: NodeJS.ProcessEnv = process.env): NatsTarget {
  const servers: string[] = [];
  let tls = false;
  let user: string | undefined;
  let pass: string | undefined;
  for (const part of url
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const withScheme = /^[a-z]+:\/\//i.test(part) ? part : `nats://${part}`;
    let u: URL;
    try {
      u = new URL(withScheme);
    } catch {
      throw new FleetConfigError(`not a NATS URL: ${redactUrls(part)}`);
    }
    if (u.protocol === 'tls:') tls = true;
    else if (u.protocol !== 'nats:') throw new FleetConfigError(`NATS URL scheme must be nats:// or tls://, got ${u.protocol}//`);
    if (u.username) {
      user = decodeURIComponent(u.username);
      pass = decodeURIComponent(u.password);
    }
    servers.push(`${u.hostname.includes(':') ? `[${u.hostname}]` : u.hostname}:${u.port || '4222'}`);
  }
  if (servers.length === 0) throw new FleetConfigError('no NATS server given (--nats nats://host:4222)');
  const token = env.DCL_NATS_TOKEN || undefined;
  if (env.DCL_NATS_USER) {
    user = env.DCL_NATS_USER;
    pass = env.DCL_NATS_PASSWORD ?? '';
  }
  return { servers, tls, user, pass, token };
}

/** `wait`: keep trying until a server answers (long-running workers and gateways); otherwise fail at once (short commands). */
export async function connectNats(url: string, log: Logger, name: string, wait = false): Promise<NatsConnection> {
  const t = natsTarget(url);
  const { connect } = await import('@nats-io/transport-node');
  const tls = t.tls ? (process.env.DCL_NATS_CA ? { caFile: process.env.DCL_NATS_CA } : {}) : undefined;
  let nc: NatsConnection;
  if (wait) log.info({ servers: t.servers }, 'connecting to NATS (waiting until a server answers)');
  try {
    nc = await connect({
      servers: t.servers,
      name,
      user: t.user,
      pass: t.pass,
      token: t.token,
      tls,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      // A worker or gateway may wait for a server that is starting (a fleet starts in any order).
      waitOnFirstConnect: wait,
      timeout: 5000,
    });
  } catch (e) {
    throw new FleetConfigError(`cannot connect to NATS at ${t.servers.join(',')}: ${(e as Error).message}`);
  }
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') log.warn({ server: s.server }, 'NATS connection lost: reconnecting');
      else if (s.type === 'reconnect') log.info({ server: s.server }, 'NATS reconnected');
      else if (s.type === 'error') log.warn({ err: s.error }, 'NATS error');
    }
  })().catch(() => {});
  log.info({ servers: t.servers, tls: t.tls, auth: t.token ? 'token' : t.user ? 'user' : 'none' }, 'connected to NATS');
  return nc;
}

/** The process's connection for `url`, shared through the graph's resources (the last user closes it). */
export function sharedNats(shared: SharedResources, url: string, log: Logger, name: string): Promise<Lease<NatsConnection>> {
  return shared.acquire(
    `nats:${url}`,
    () => connectNats(url, log, name, true),
    async (nc) => {
      await nc.drain().catch(() => nc.close());
    },
  );
}
