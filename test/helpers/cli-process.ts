import { spawn, type ChildProcess } from 'node:child_process';
import { CLI, ROOT } from './build-cli.js';
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
  const line = await until(() => run.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('serving at')), ms, 'the server to listen', () => `stderr so far:\n${run.stderr.slice(-4000)}`);
  const http = String(line.url);
  return { http, ws: String(line.ws), port: Number(new URL(http).port) };
}

export function killAll(children: readonly CliProcess[]): void {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
}
