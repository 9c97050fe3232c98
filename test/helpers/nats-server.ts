import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';
import { until } from './wait.js';

// Real nats-server processes on loopback ports (Debian's nats-server, installed by scripts/setup.sh):
// one server with JetStream, or a 3-node cluster with JetStream on every node.

export const NATS_SERVER = 'nats-server';
export const natsServerAvailable = spawnSync(NATS_SERVER, ['--version'], { stdio: 'ignore' }).status === 0;

export interface NatsNode {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly monitorPort: number;
  child: ChildProcess;
  /** What the server printed (replaced on restart). */
  out: { log: string };
  readonly args: string[];
}

function launch(args: string[]): { child: ChildProcess; out: { log: string } } {
  const child = spawn(NATS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { log: '' };
  child.stdout!.on('data', (d: Buffer) => (out.log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out.log += d.toString()));
  return { child, out };
}

async function startNode(name: string, extra: (n: { port: number; monitorPort: number; dir: string }) => string[], dir: string): Promise<NatsNode> {
  const port = await freePort();
  const monitorPort = await freePort();
  const args = [
    '-a',
    '127.0.0.1',
    '-p',
    String(port),
    '-m',
    String(monitorPort),
    '-n',
    name,
    '-js',
    '-sd',
    join(dir, name),
    ...extra({ port, monitorPort, dir }),
  ];
  const { child, out } = launch(args);
  const node: NatsNode = { name, port, monitorPort, url: `nats://127.0.0.1:${port}`, child, out, args };
  await until(
    () => out.log.includes('Server is ready'),
    15_000,
    `nats-server ${name} to start`,
    () => out.log.slice(-2000),
  );
  return node;
}

/** Starts the node again with the same ports and store (after kill()). */
export async function restartNode(node: NatsNode): Promise<void> {
  const { child, out } = launch(node.args);
  node.child = child;
  node.out = out;
  await until(
    () => out.log.includes('Server is ready'),
    15_000,
    `nats-server ${node.name} to restart`,
    () => out.log.slice(-2000),
  );
}

export interface NatsFixture {
  readonly nodes: NatsNode[];
  /** Every node's URL, comma-separated (what the fleet's --nats takes). */
  readonly url: string;
  stop(): void;
}

export async function startNats(): Promise<NatsFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'dcl-nats-'));
  const node = await startNode('n1', () => [], dir);
  return { nodes: [node], url: node.url, stop: () => stopAll([node], dir) };
}

/** Three nodes routed to each other, JetStream clustered (buckets can have 3 replicas). */
export async function startNatsCluster(): Promise<NatsFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'dcl-nats-cluster-'));
  const clusterPorts = [await freePort(), await freePort(), await freePort()];
  const routes = clusterPorts.map((p) => `nats://127.0.0.1:${p}`).join(',');
  const nodes = await Promise.all(
    clusterPorts.map((cp, i) => startNode(`n${i + 1}`, () => ['--cluster_name', 'dcl', '--cluster', `nats://127.0.0.1:${cp}`, '--routes', routes], dir)),
  );
  return { nodes, url: nodes.map((n) => n.url).join(','), stop: () => stopAll(nodes, dir) };
}

function stopAll(nodes: readonly NatsNode[], dir: string): void {
  for (const n of nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}

/** Client connections a node serves now, by name (its monitoring endpoint). */
export async function connectionNames(node: NatsNode): Promise<string[]> {
  const r = await fetch(`http://127.0.0.1:${node.monitorPort}/connz`);
  const j = (await r.json()) as { connections?: Array<{ name?: string }> };
  return (j.connections ?? []).map((c) => c.name ?? '');
}
