import { redactUrls } from '../../util/redact.js';
import { isUserError } from '../../util/errors.js';
import type { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../util/log.js';
import { collectSet, intOption, positiveOption } from '../options.js';
import { UsageError } from '../usage-error.js';
import { exitBySignal, exitNow, exitOnFatalError } from '../exit.js';
import { resolvePackArg } from '../../graph/input-paths.js';

// `depthcrafter-live fleet ...`: cameras and GPU workers coordinated through NATS (docs/fleet.md).
// The fleet modules (and the NATS client) load only when a fleet command runs.

const PIPELINES = fileURLToPath(new URL('../../../pipelines/', import.meta.url));
const DEFAULT_NATS = process.env.DCL_NATS_URL ?? 'nats://127.0.0.1:4222';

interface BusOptions {
  nats: string;
  leaseTtl: number;
  replicas?: number;
}

function busOptions(cmd: Command): Command {
  return cmd
    .option(
      '--nats <url>',
      'NATS server(s): nats://host:port[,host:port] or tls://; credentials from DCL_NATS_TOKEN or DCL_NATS_USER/DCL_NATS_PASSWORD (env DCL_NATS_URL)',
      DEFAULT_NATS,
    )
    .option(
      '--lease-ttl <ms>',
      "camera lease TTL: how soon a dead worker's cameras are taken over (the same for the whole fleet)",
      intOption('--lease-ttl'),
      6000,
    )
    .option('--replicas <n>', "replicas of the fleet's key-value buckets when first created (3 on a 3-node cluster)", intOption('--replicas'));
}

async function userErrors<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    // Shown as a usage error (message only); the exit code would be 2 by type anyway (util/errors.ts).
    if (isUserError(e)) throw new UsageError((e as Error).message);
    throw e;
  }
}

async function withBuckets<T>(o: BusOptions, use: (b: Awaited<ReturnType<typeof import('../../fleet/buckets.js').openBuckets>>) => Promise<T>): Promise<T> {
  const log = createLogger({ level: 'warn' });
  return userErrors(async () => {
    const { connectNats } = await import('../../fleet/nats.js');
    const { openBuckets } = await import('../../fleet/buckets.js');
    const nc = await connectNats(o.nats, log, 'depthcrafter-live fleet camera');
    try {
      return await use(await openBuckets(nc, { leaseTtlMs: o.leaseTtl, replicas: o.replicas }));
    } catch (e) {
      if (/timeout/i.test((e as Error).message))
        throw new Error(
          `NATS did not answer in time: ${(e as Error).message} (a JetStream cluster that lost a node answers again once it has elected new leaders)`,
          { cause: e },
        );
      throw e;
    } finally {
      await nc.drain().catch(() => nc.close());
    }
  });
}

/** Runs a long-lived fleet process until SIGINT/SIGTERM (a second signal exits at once). */
async function serve(proc: { start(): Promise<void>; stop(): Promise<void>; done: Promise<void> }, log: ReturnType<typeof createLogger>): Promise<void> {
  exitOnFatalError(log);
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) exitBySignal(sig, log);
    log.info({ signal: sig }, 'stopping: handing cameras back and draining');
    void proc.stop().then(() => exitNow(0, log));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  await userErrors(() => proc.start());
  try {
    await proc.done;
  } catch (e) {
    log.error({ err: e }, 'fleet process failed');
    setTimeout(() => exitNow(1, log), 100);
  }
}

export function registerFleet(program: Command): void {
  const fleet = program.command('fleet').description('Cameras and GPU workers on several machines, coordinated through NATS (docs/fleet.md)');
  const camera = fleet.command('camera').description("The fleet's camera list (a NATS key-value bucket)");
  busOptions(
    camera
      .command('add')
      .description('Add (or replace) a camera: rtsp://..., synthetic:?seed=3&fps=8, test:?pattern=ball, v4l2:///dev/video0, file:///path')
      .argument('<name>', 'camera name (letters, digits, "_", "-")')
      .argument('<url>', 'where its frames come from')
      .option('--set <key=value>', 'a source option (fps=8) or a worker node option (depth.maxRes=256), repeatable', collectSet, []),
  ).action(async (name: string, url: string, o: BusOptions & { set: string[] }) => {
    const { cameraRecord } = await import('../../fleet/cameras.js');
    const rec = await userErrors(async () => cameraRecord(name, url, o.set));
    await withBuckets(o, (b) => b.cameras.put(name, JSON.stringify(rec)));
    process.stdout.write(`camera ${name} added\n`);
  });
  busOptions(camera.command('remove').description('Remove a camera (its worker stops it within the lease TTL)').argument('<name>')).action(
    async (name: string, o: BusOptions) => {
      const found = await withBuckets(o, async (b) => {
        const e = await b.cameras.get(name);
        if (!e || e.operation !== 'PUT') return false;
        await b.cameras.delete(name);
        return true;
      });
      if (!found) throw new UsageError(`no camera "${name}" in the fleet's list`);
      process.stdout.write(`camera ${name} removed\n`);
    },
  );
  busOptions(camera.command('list').description('The cameras, with the worker that holds each').option('--json', 'one JSON object')).action(
    async (o: BusOptions & { json?: boolean }) => {
      const { readCameras } = await import('../../fleet/buckets.js');
      const rows = await withBuckets(o, async (b) => {
        const cams = await readCameras(b.cameras, (key, why) => process.stderr.write(`warning: camera "${key}" cannot be used: ${why}\n`));
        const out = [];
        for (const rec of cams.values()) {
          const lease = await b.leases.get(rec.name);
          const worker = lease?.operation === 'PUT' ? (JSON.parse(lease.string()) as { worker: string }).worker : null;
          out.push({ name: rec.name, url: redactUrls(rec.url), worker });
        }
        return out;
      });
      if (o.json) process.stdout.write(`${JSON.stringify({ cameras: rows })}\n`);
      else for (const r of rows) process.stdout.write(`${r.name}\t${r.url}\t${r.worker ?? '(unserved)'}\n`);
    },
  );

  busOptions(
    fleet
      .command('worker')
      .description('Serve cameras from the list up to --capacity (leases renewed while healthy), publishing depth on dcl.depth.<camera>')
      .option('--capacity <n>', 'most cameras this worker serves at once', intOption('--capacity'), 4)
      .option('-m, --model <pack>', "model pack (default: the pipeline's, synthetic-small)")
      .option('--pipeline <file>', 'the worker pipeline', `${PIPELINES}fleet-worker.yaml`)
      .option('--set <path=value>', 'override a pipeline option, e.g. depth.steps=3 (repeatable)', collectSet, [])
      .option('--id <id>', 'worker id (default: host-pid-random)')
      .option('--log-level <level>', 'trace|debug|info|warn|error'),
  ).action(async (o: BusOptions & { capacity: number; model?: string; pipeline: string; set: string[]; id?: string; logLevel?: string }) => {
    if (o.capacity < 1) throw new UsageError('--capacity must be at least 1');
    const log = createLogger({ level: o.logLevel });
    const { FleetWorker } = await import('../../fleet/worker.js');
    const sets = [...(o.model ? [`depth.model=${resolvePackArg(o.model)}`] : []), ...o.set];
    const worker = await userErrors(
      async () =>
        new FleetWorker({ nats: o.nats, capacity: o.capacity, pipelineFile: o.pipeline, sets, id: o.id, leaseTtlMs: o.leaseTtl, replicas: o.replicas, log }),
    );
    await serve(worker, log);
  });

  busOptions(
    fleet
      .command('edge')
      .description(
        'Publish a camera only this machine reaches (v4l2:///dev/video0, test:, synthetic:, rtsp://, file://) as JPEG on dcl.frames.<name>, for a worker elsewhere (camera URL edge:)',
      )
      .argument('<name>', 'camera name (letters, digits, "_", "-")')
      .argument('<url>', 'where its frames come from, as in `fleet camera add`')
      .option('--set <key=value>', 'a source option (fps=15), or with --register a worker node option (depth.maxRes=256), repeatable', collectSet, [])
      .option('--register', "put the camera into the fleet's list as edge: (so that a worker serves it)")
      .option('--fps-limit <n>', 'publish at most this many frames per second', positiveOption('--fps-limit'))
      .option('--quality <q>', 'JPEG quality 1-100', intOption('--quality'), 80)
      .option('--id <id>', 'edge id stamped on its messages (default: host-pid)')
      .option('--port <n>', 'serve /streams, /healthz and /metrics on this port (default: no HTTP server)', intOption('--port'))
      .option('--host <host>', 'HTTP host (with --port)')
      .option('--log-level <level>', 'trace|debug|info|warn|error'),
  ).action(
    async (
      name: string,
      url: string,
      o: BusOptions & { set: string[]; register?: boolean; fpsLimit?: number; quality: number; id?: string; port?: number; host?: string; logLevel?: string },
    ) => {
      if (o.quality < 1 || o.quality > 100) throw new UsageError('--quality must be between 1 and 100');
      const log = createLogger({ level: o.logLevel });
      const { FleetEdge } = await import('../../fleet/edge.js');
      const edge = await userErrors(
        async () =>
          new FleetEdge({
            nats: o.nats,
            name,
            url,
            sets: o.set,
            quality: o.quality,
            fpsLimit: o.fpsLimit,
            register: o.register === true,
            leaseTtlMs: o.leaseTtl,
            replicas: o.replicas,
            id: o.id,
            port: o.port,
            host: o.host,
            log,
          }),
      );
      await serve(
        {
          start: async () => {
            await edge.start();
            const a = edge.graph.address;
            if (a) log.info({ url: `http://${a.address}:${a.port}/streams` }, `fleet edge serving /streams at http://${a.address}:${a.port}/streams`);
          },
          stop: () => edge.stop(),
          // A source that ends (a file without loop, test:?frames=N): drain and exit.
          done: edge.done.then(async () => {
            if (edge.stopped) return new Promise<void>(() => {}); // a signal's stop: it exits
            log.info('the camera source ended: stopping');
            await edge.stop();
            exitNow(0, log);
          }),
        },
        log,
      );
    },
  );

  busOptions(
    fleet
      .command('gateway')
      .description('Serve the viewer, /ws (?stream=), /streams and /fleet for every camera of the fleet, from the bus')
      .option('--port <n>', 'HTTP port', intOption('--port'))
      .option('--host <host>', 'HTTP host')
      .option('--pipeline <file>', 'the gateway pipeline', `${PIPELINES}fleet-gateway.yaml`)
      .option('--set <path=value>', 'override a pipeline option, e.g. ws.allowedOrigins=[...] (repeatable)', collectSet, [])
      .option('--log-level <level>', 'trace|debug|info|warn|error'),
  ).action(async (o: BusOptions & { port?: number; host?: string; pipeline: string; set: string[]; logLevel?: string }) => {
    const log = createLogger({ level: o.logLevel });
    const { FleetGateway } = await import('../../fleet/gateway.js');
    const sets = [...(o.port !== undefined ? [`server.port=${o.port}`] : []), ...(o.host ? [`server.host=${o.host}`] : []), ...o.set];
    const gw = await userErrors(
      async () => new FleetGateway({ nats: o.nats, pipelineFile: o.pipeline, sets, leaseTtlMs: o.leaseTtl, replicas: o.replicas, log }),
    );
    await serve(
      {
        start: async () => {
          await gw.start();
          const a = gw.graph.address;
          if (a)
            log.info(
              { url: `http://${a.address}:${a.port}/`, fleet: `http://${a.address}:${a.port}/fleet` },
              `fleet gateway serving at http://${a.address}:${a.port}/`,
            );
        },
        stop: () => gw.stop(),
        done: gw.done,
      },
      log,
    );
  });
}
