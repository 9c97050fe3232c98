import type { NatsConnection } from '@nats-io/nats-core';
import type { KV } from '@nats-io/kv';
import { CAMERAS_BUCKET, LEASES_BUCKET, WORKERS_BUCKET } from './subjects.js';
import { cameraRecordSchema, type CameraRecord } from './cameras.js';
import { FleetConfigError } from './nats.js';

// The fleet's three key-value buckets (JetStream), created on first use with the same settings by
// whichever process comes first. `replicas` > 1 on a NATS cluster keeps them through a node loss.

export interface FleetBuckets {
  readonly cameras: KV;
  readonly leases: KV;
  readonly workers: KV;
}

export interface BucketOptions {
  readonly leaseTtlMs: number;
  readonly replicas?: number;
  /** How long to retry while the server's JetStream is not ready (default 20 s). */
  readonly waitMs?: number;
}

export async function openBuckets(nc: NatsConnection, o: BucketOptions): Promise<FleetBuckets> {
  const { Kvm } = await import('@nats-io/kv');
  const kvm = new Kvm(nc);
  const replicas = o.replicas ?? 1;
  // A cluster that is starting answers "temporarily unavailable" until it has elected its leaders.
  const deadline = performance.now() + (o.waitMs ?? 20_000);
  for (;;) {
    try {
      const [cameras, leases, workers] = await Promise.all([
        kvm.create(CAMERAS_BUCKET, { history: 1, replicas }),
        kvm.create(LEASES_BUCKET, { history: 1, replicas, ttl: o.leaseTtlMs }),
        kvm.create(WORKERS_BUCKET, { history: 1, replicas, ttl: o.leaseTtlMs }),
      ]);
      return { cameras, leases, workers };
    } catch (e) {
      if (performance.now() < deadline && !/jetstream (is )?not enabled/i.test((e as Error).message)) {
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      throw bucketError(e);
    }
  }
}

function bucketError(e: unknown): FleetConfigError {
  const msg = (e as Error).message;
  return new FleetConfigError(
    /jetstream (is )?not enabled|503/i.test(msg)
      ? `the NATS server has no JetStream (the fleet keeps its camera list and leases in JetStream key-value buckets): start nats-server with -js (${msg})`
      : `cannot open the fleet's key-value buckets: ${msg}`,
  );
}

/**
 * The bucket's keys, once each. The client's listing can yield a key twice when it is updated
 * meanwhile, and can hang when a key's TTL runs out during it: a listing that takes longer than
 * `timeoutMs` rejects (the caller's next tick lists again).
 */
export async function listKeys(kv: KV, timeoutMs = 5000): Promise<string[]> {
  const out = new Set<string>();
  const iter = await kv.keys();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      iter.stop();
      reject(new Error(`listing the keys of a fleet bucket took over ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    await Promise.race([
      (async () => {
        for await (const k of iter) out.add(k);
      })(),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
  return [...out].sort();
}

/** Every camera of the list; records that do not parse are reported, not thrown. */
export async function readCameras(kv: KV, onBad: (key: string, why: string) => void): Promise<Map<string, CameraRecord>> {
  const out = new Map<string, CameraRecord>();
  for (const key of await listKeys(kv)) {
    const e = await kv.get(key);
    if (!e || e.operation !== 'PUT') continue;
    try {
      const rec = cameraRecordSchema.parse(JSON.parse(e.string()));
      if (rec.name !== key) throw new Error(`its name is ${JSON.stringify(rec.name)}`);
      out.set(key, rec);
    } catch (err) {
      onBad(key, (err as Error).message);
    }
  }
  return out;
}
