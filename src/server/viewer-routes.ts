import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { COLORMAP_NAMES, colormapByName } from '../io/colormap.js';
import type { HttpHub } from './http-hub.js';

// The browser viewer (viewer/) served on the pipeline's HTTP server: the page at /, its scripts,
// the colour maps at /colormaps.json, and the three.js build its 3D view uses.

/** The viewer's folder in the source tree (the same from src/ under tsx and from dist/: tsc does not copy it). */
const VIEWER_DIR = fileURLToPath(new URL('../../src/server/viewer/', import.meta.url));

/**
 * The viewer's files: a fixed list of paths (nothing else under the folders is reachable). three.js and its
 * OrbitControls come from node_modules (the `three` dependency), never from a CDN: the viewer works offline.
 */
interface ViewerFile {
  readonly path: string;
  readonly file: string;
  readonly type: string;
  /** A pinned dependency's file (cached by browsers for a day). */
  readonly immutable?: boolean;
}

export function mountViewer(http: HttpHub, log: Logger): void {
  const html = readFileSync(join(VIEWER_DIR, 'index.html'));
  const luts = JSON.stringify(Object.fromEntries(COLORMAP_NAMES.map((n) => [n, Array.from(colormapByName(n))])));
  http.route('/', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' }).end(html);
  });
  http.route('/colormaps.json', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(luts);
  });
  for (const f of viewerFiles(log)) {
    // Read on first request and kept (three.js is about 2 MB: only pipelines whose viewer is opened hold it).
    let body: Promise<Buffer> | null = null;
    http.route(f.path, async (_req, res) => {
      body ??= readFile(f.file).catch((e: unknown) => {
        body = null;
        throw e;
      });
      const bytes = await body;
      // The viewer's own files may change with a checkout (no-cache revalidates); a pinned three.js build does not within a day.
      res.writeHead(200, { 'content-type': f.type, 'cache-control': f.immutable ? 'public, max-age=86400' : 'no-cache' }).end(bytes);
    });
  }
}

function viewerFiles(log: Logger): ViewerFile[] {
  const js = 'text/javascript; charset=utf-8';
  const files: ViewerFile[] = [
    { path: '/viewer.js', file: join(VIEWER_DIR, 'viewer.js'), type: js },
    { path: '/pointcloud.js', file: join(VIEWER_DIR, 'pointcloud.js'), type: js },
    { path: '/favicon.svg', file: join(VIEWER_DIR, 'favicon.svg'), type: 'image/svg+xml' },
    // Browsers ask for /favicon.ico whatever the page says: the same SVG (they sniff the type from the header).
    { path: '/favicon.ico', file: join(VIEWER_DIR, 'favicon.svg'), type: 'image/svg+xml' },
  ];
  try {
    const require = createRequire(import.meta.url);
    const threeBuild = dirname(require.resolve('three')); // node_modules/three/build (the require entry is build/three.cjs)
    files.push(
      { path: '/vendor/three/three.module.js', file: join(threeBuild, 'three.module.js'), type: js, immutable: true },
      { path: '/vendor/three/three.core.js', file: join(threeBuild, 'three.core.js'), type: js, immutable: true },
      {
        path: '/vendor/three/addons/controls/OrbitControls.js',
        file: require.resolve('three/examples/jsm/controls/OrbitControls.js'),
        type: js,
        immutable: true,
      },
    );
  } catch {
    // A checkout whose node_modules predates the dependency: the viewer works, its 3D view says it is unavailable.
    log.warn('the "three" package is not installed (run npm install): the viewer\'s 3D view is unavailable');
  }
  return files;
}
