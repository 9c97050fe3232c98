// The fleet's parts one by one: fair shares, camera URLs, NATS targets (credentials kept out of
// logs), and the lease keeper against a real nats-server's key-value bucket (create only when
// free, compare-and-set renewal, expiry after the TTL, local trust that ends before the TTL).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { fairShare } from '../src/fleet/fair-share.js';
import { cameraRecord, streamEntryFor } from '../src/fleet/cameras.js';
import { natsTarget, FleetConfigError } from '../src/fleet/nats.js';
import { redactUrls } from '../src/util/redact.js';
import { LeaseKeeper } from '../src/fleet/leases.js';
import { openBuckets } from '../src/fleet/buckets.js';
import { natsServerAvailable, startNats, type NatsFixture } from './helpers/nats-server.js';
import { until } from './helpers/wait.js';

describe('fairShare', () => {
  it('splits cameras evenly, rounding up so that every camera finds a worker', () => {
    assert.equal(fairShare({ cameras: 3, capacities: [3, 3], capacity: 3 }), 2);
    assert.equal(fairShare({ cameras: 3, capacities: [3], capacity: 3 }), 3);
    assert.equal(fairShare({ cameras: 8, capacities: [4, 4, 4], capacity: 4 }), 3);
    assert.equal(fairShare({ cameras: 0, capacities: [2, 2], capacity: 2 }), 0);
  });
  it('a small worker takes what it can; the rest spreads over the others; never over capacity', () => {
    assert.equal(fairShare({ cameras: 8, capacities: [1, 10], capacity: 1 }), 1);
    assert.equal(fairShare({ cameras: 8, capacities: [1, 10], capacity: 10 }), 7);
    assert.equal(fairShare({ cameras: 100, capacities: [4, 4], capacity: 4 }), 4);
  });
});

describe('camera records', () => {
  it('the URL picks the source; --set goes to the source or to a worker node', () => {
    const rtsp = streamEntryFor(cameraRecord('door', 'rtsp://u:p@10.0.0.2:554/s', ['latencyMs=100', 'depth.maxRes=256']));
    assert.equal(rtsp.source.kind, 'rtsp');
    assert.equal(rtsp.source.options.url, 'rtsp://u:p@10.0.0.2:554/s');
    assert.equal(rtsp.source.options.latencyMs, 100);
    assert.deepEqual(rtsp.overrides, { depth: { maxRes: 256 } });
    assert.deepEqual(streamEntryFor(cameraRecord('s', 'synthetic:?seed=3&fps=8')).source, { kind: 'synthetic', options: { seed: 3, fps: 8 } });
    assert.equal(streamEntryFor(cameraRecord('t', 'test:?pattern=ball')).source.kind, 'test-pattern');
    assert.deepEqual(streamEntryFor(cameraRecord('u', 'v4l2:///dev/video2')).source, { kind: 'camera', options: { device: '/dev/video2' } });
    assert.equal(streamEntryFor(cameraRecord('f', '/videos/a.mp4')).source.options.path, '/videos/a.mp4');
  });
  it('edge: is a camera that `fleet edge` publishes on the bus: a nats-frames source, options from the query and --set', () => {
    assert.deepEqual(streamEntryFor(cameraRecord('usb1', 'edge:')).source, { kind: 'nats-frames', options: {} });
    const e = streamEntryFor(cameraRecord('usb1', 'edge:?fps=8', ['staleMs=4000', 'depth.maxRes=128']));
    assert.deepEqual(e.source, { kind: 'nats-frames', options: { fps: 8, staleMs: 4000 } });
    assert.deepEqual(e.overrides, { depth: { maxRes: 128 } });
  });
  it('bad names, URLs and --set values are user errors that name the problem (and never echo a password)', () => {
    assert.throws(
      () => cameraRecord('a b', 'synthetic:'),
      (e: Error) => e instanceof FleetConfigError && /camera names are/.test(e.message),
    );
    assert.throws(() => cameraRecord('a', 'ftp://x/y'), /scheme ftp:\/\/ not supported/);
    assert.throws(() => cameraRecord('a', 'nonsense'), /camera URL not understood/);
    assert.throws(() => cameraRecord('a', 'synthetic:', ['fps']), /--set needs KEY=VALUE/);
    assert.throws(
      () => cameraRecord('a', 'gopher://u:secret@h/'),
      (e: Error) => !e.message.includes('secret'),
    );
  });
});

describe('NATS targets', () => {
  it('server lists, TLS, credentials from the URL or the environment; logs see no secret', () => {
    const t = natsTarget('nats://a:4222, nats://b:5222');
    assert.deepEqual(t.servers, ['a:4222', 'b:5222']);
    assert.equal(t.tls, false);
    assert.equal(natsTarget('tls://h').tls, true);
    assert.deepEqual(natsTarget('h').servers, ['h:4222']);
    const withCreds = natsTarget('nats://me:s%40cret@h:1');
    assert.deepEqual([withCreds.user, withCreds.pass], ['me', 's@cret']);
    const env = natsTarget('nats://h', { DCL_NATS_USER: 'svc', DCL_NATS_PASSWORD: 'pw', DCL_NATS_TOKEN: 'tok' });
    assert.deepEqual([env.user, env.pass, env.token], ['svc', 'pw', 'tok']);
    assert.equal(redactUrls('nats://me:secret@h:1,nats://x:y@k'), 'nats://***@h:1,nats://***@k');
    assert.throws(() => natsTarget('http://h'), /nats:\/\/ or tls:\/\//);
    assert.throws(() => natsTarget(' , '), /no NATS server given/);
  });
});

describe('fleet commands, bad input', () => {
  it('an unreachable NATS server: exit 2 naming it, at once', async () => {
    const { execFile } = await import('node:child_process');
    const { ensureBuilt, CLI } = await import('./helpers/build-cli.js');
    ensureBuilt();
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
      execFile(process.execPath, [CLI, 'fleet', 'camera', 'list', '--nats', 'nats://user:hunter2@127.0.0.1:1'], { timeout: 30_000 }, (err, _o, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr }),
      ),
    );
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /cannot connect to NATS at 127\.0\.0\.1:1/);
    assert.doesNotMatch(r.stderr, /hunter2/);
    const bad = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
      execFile(process.execPath, [CLI, 'fleet', 'camera', 'add', 'x', 'ftp://h/'], (err, _o, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr }),
      ),
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /scheme ftp:\/\/ not supported/);
  });
});

describe('LeaseKeeper on a real nats-server', { skip: natsServerAvailable ? false : 'nats-server is not installed' }, () => {
  let nats: NatsFixture;
  let nc: NatsConnection;
  const TTL = 1500;

  before(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url });
  });
  after(async () => {
    await nc?.close();
    nats?.stop();
  });

  it('one holder at a time; renewal by compare-and-set; expiry after the TTL frees the camera; trust ends before it', async () => {
    const { leases } = await openBuckets(nc, { leaseTtlMs: TTL });
    let clock = 0;
    const a = new LeaseKeeper(leases, 'A', TTL, () => clock);
    const b = new LeaseKeeper(leases, 'B', TTL);
    assert.equal(await a.claim('cam'), true);
    assert.equal(await b.claim('cam'), false, 'held by A');
    assert.deepEqual(await a.renewAll(), []);
    assert.equal(a.valid('cam'), true);
    clock += TTL * 0.75; // A's own clock: no renewal confirmed for 0.75 TTL
    assert.equal(a.valid('cam'), false, 'A stops trusting its lease before the TTL');
    clock = 0;
    // A stops renewing (as if cut off): the key ages out and B can take it.
    const took = await until(async () => ((await b.claim('cam')) ? true : undefined), TTL * 4, 'B to claim after the TTL');
    assert.equal(took, true);
    // A's next renewal finds the camera taken (wrong revision) and gives it up.
    assert.deepEqual(await a.renewAll(), ['cam']);
    assert.equal(a.valid('cam'), false);
    // Release deletes only one's own revision: A cannot delete B's lease.
    await a.release('cam');
    assert.equal(JSON.parse((await leases.get('cam'))!.string()).worker, 'B');
    await b.release('cam');
    assert.notEqual((await leases.get('cam'))?.operation, 'PUT');
    assert.equal(await a.claim('cam'), true, 'free again at once after a release');
  });

  it('a server without JetStream: the error says to start it with -js', async () => {
    const { spawn } = await import('node:child_process');
    const { freePort } = await import('./helpers/net.js');
    const port = await freePort();
    const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    try {
      const plain = await until(async () => connect({ servers: `127.0.0.1:${port}` }).catch(() => undefined), 10_000, 'a plain nats-server');
      await assert.rejects(openBuckets(plain, { leaseTtlMs: TTL, waitMs: 0 }), /no JetStream.*-js/);
      await plain.close();
    } finally {
      child.kill('SIGKILL');
    }
  });
});
