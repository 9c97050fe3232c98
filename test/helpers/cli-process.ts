import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { CLI, ROOT, ensureBuilt } from './build-cli.js';
import { until } from './wait.js';

// The real CLI as a long-running child process, with its JSON log lines parsed as they arrive.

export interface CliProcess {
  readonly child: ChildProcess;
  /** Parsed JSON log lines (stderr), in order. */
  readonly lines: Array<Record<string, unknown>>;
  stderr: string;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startCli(args: string[], env: Record<string, string | undefined> = {}): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, CI: '1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run: CliProcess = {
    child,
    lines: [],
    stderr: '',
    exit: new Promise((res) => child.once('exit', (code, signal) => res({ code, signal }))),
  };
  let partial = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    run.stderr += chunk;
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      try {
        run.lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        /* not a JSON log line (an error message) */
      }
    }
  });
  child.stdout!.resume();
  return run;
}

/** Wait for the "serving at" line and return the server's http and ws URLs. */
export async function serving(run: CliProcess, ms = 20_000): Promise<{ http: string; ws: string; port: number }> {
  const line = await until(
    () => run.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('serving at')),
    ms,
    'the server to listen',
    () => `stderr so far:\n${run.stderr.slice(-4000)}`,
  );
  const http = String(line.url);
  return { http, ws: String(line.ws), port: Number(new URL(http).port) };
}

export function killAll(children: readonly CliProcess[]): void {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
}

/** The smallest live pipeline served on an ephemeral port: a test pattern broadcast on /ws. */
export const TEST_PATTERN_PIPELINE = `
name: test-pattern
server: { host: 127.0.0.1, port: 0 }
nodes:
  source: { kind: test-pattern, options: { pattern: ball, width: 160, height: 120, fps: 30 } }
  ws: { kind: websocket }
edges:
  - { from: source.video, to: ws.frames, queue: { capacity: 4, policy: drop-oldest } }
`;

/**
 * For a describe block: builds the CLI, gives it a temporary folder (with `pipeline` written to
 * `file` when given) and kills every child and removes the folder afterwards.
 */
export function cliFixture(prefix: string, pipeline?: string): { readonly tmp: string; readonly file: string; readonly children: CliProcess[] } {
  const fx = { tmp: '', file: '', children: [] as CliProcess[] };
  before(
    () => {
      ensureBuilt();
      fx.tmp = mkdtempSync(join(tmpdir(), prefix));
      fx.file = join(fx.tmp, 'p.yaml');
      if (pipeline !== undefined) writeFileSync(fx.file, pipeline);
    },
    { timeout: 120_000 },
  );
  after(() => {
    killAll(fx.children);
    rmSync(fx.tmp, { recursive: true, force: true });
  });
  return fx;
}
