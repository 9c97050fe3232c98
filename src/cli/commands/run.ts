import type { Command } from 'commander';
import { loadPipelineFile } from '../../graph/pipeline-file.js';
import { builtinRegistry } from '../../nodes/index.js';
import { Graph } from '../../graph/runtime.js';
import { checkPipeline } from '../../graph/check.js';
import { createLogger } from '../../util/log.js';
import { collectSet } from '../options.js';
import { exitBySignal, exitNow, exitOnFatalError } from '../exit.js';

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('Run a pipeline until its sources end or SIGINT/SIGTERM (which drains and flushes)')
    .argument('<pipeline>', 'pipeline YAML file')
    .option('--set <path=value>', 'override an option, e.g. source.url=rtsp://... or server.port=9000 (repeatable)', collectSet, [])
    .option('--log-level <level>', 'trace|debug|info|warn|error')
    .action(async (file: string, opts: { set: string[]; logLevel?: string }) => {
      const pipeline = loadPipelineFile(file, builtinRegistry(), { overrides: opts.set });
      const log = createLogger({ level: opts.logLevel ?? pipeline.logLevel });
      for (const w of (await checkPipeline(pipeline)).warnings) log.warn(w);
      exitOnFatalError(log);
      const graph = new Graph(pipeline, { log });
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        signals++;
        if (signals > 1) {
          log.warn({ signal: sig }, 'second signal: exiting without draining (unfinished outputs are left only as hidden temporaries)');
          exitBySignal(sig, log);
        }
        log.info({ signal: sig }, 'stopping: draining in-flight frames');
        void graph.stop();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      await graph.start();
      if (graph.address) {
        const host = graph.address.address.includes(':') ? `[${graph.address.address}]` : graph.address.address;
        const url = `http://${host}:${graph.address.port}/`;
        // The WebSocket paths the pipeline really serves (a copy-pasted second sink has its own), and its streams.
        const ws = pipeline.nodes
          .filter((n) => n.kind.kind === 'websocket')
          .map((n) => `${url.replace(/^http/, 'ws')}${(n.options as { path: string }).path.slice(1)}`);
        const streams = graph.streamViews().map((v) => v.name);
        log.info(
          { url, ws: ws.length === 1 ? ws[0] : ws, streams, metrics: `${url}metrics`, ...(pipeline.streams ? { streamList: `${url}streams` } : {}) },
          `serving at ${url}`,
        );
        if (process.stdout.isTTY) process.stdout.write(`Viewer: ${url}\n`);
      }
      try {
        await graph.done;
        log.info({ frames: await graph.frameCounts() }, 'pipeline finished');
      } catch (e) {
        log.error({ err: e }, 'pipeline failed');
        log.flush?.();
        // The GStreamer binding can keep the event loop alive after a stop: exit explicitly.
        setTimeout(() => exitNow(1, log), 100);
        return;
      }
      log.flush?.();
      setTimeout(() => exitNow(0, log), 100);
    });
}
