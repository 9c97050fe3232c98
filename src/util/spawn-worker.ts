import { Worker, type WorkerOptions } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';

/**
 * Start a worker from a module next to `fromUrl` (pass import.meta.url), by base name without
 * extension. From the build it is the .js file; from source (tests, dev) Node 20 workers do not
 * inherit tsx's --import hooks, so the worker registers tsx itself before importing the .ts.
 */
export function spawnWorker(fromUrl: string, baseName: string, options: WorkerOptions = {}): Worker {
  const fromSource = fileURLToPath(fromUrl).endsWith('.ts');
  const url = new URL(`./${baseName}${fromSource ? '.ts' : '.js'}`, fromUrl);
  if (!fromSource) return new Worker(url, options);
  const code = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(code, { ...options, eval: true });
}
