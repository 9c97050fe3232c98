import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { isLoopback, presentedToken, type HttpHub } from './http-hub.js';
import { clipForLog } from '../util/redact.js';

// GET /streams lists the streams with their state; with server.admin on, POST /streams adds one
// ({"name", "source": {"kind", "options"}, "overrides"}: a streams: entry of the pipeline file)
// and DELETE /streams/NAME removes one, while the others run on. Changes are accepted only from
// loopback clients, and only with the token when DCL_TOKEN is set (as for the WebSocket).

export interface StreamView {
  readonly name: string;
  /** The source's node kind. */
  readonly source: string;
  /** The worst state of the stream's nodes, or failed/stopping. */
  readonly state: string;
  readonly message?: string;
  /** Frames per second out of the source and out of the stream's last node (into the shared sinks). */
  readonly fpsIn: number;
  readonly fpsOut: number;
  readonly stride: number | null;
  readonly latencyP95S: number | null;
  readonly expectedLatencyS: number | null;
  /** Share of the shared inference worker the stream can count on. */
  readonly engineShare: number | null;
  readonly nodes: readonly string[];
}

export interface StreamControl {
  list(): StreamView[];
  readonly admin: boolean;
  add(entry: unknown): Promise<StreamView>;
  remove(name: string): Promise<void>;
  readonly log: Logger;
}

const MAX_BODY = 64 * 1024;

export function mountStreamRoutes(http: HttpHub, c: StreamControl): void {
  http.route('/streams', async (req, res) => {
    if (req.method === 'GET' || req.method === 'HEAD') return json(res, 200, { streams: c.list() });
    if (req.method !== 'POST') return json(res, 405, { error: 'use GET to list streams, POST to add one, DELETE /streams/NAME to remove one' });
    if (!allowedToChange(req, res, c)) return;
    let entry: unknown;
    try {
      entry = JSON.parse(await readBody(req));
    } catch (e) {
      return json(res, 400, {
        error: `the body must be JSON: a streams: entry such as {"name":"cam2","source":{"kind":"rtsp","options":{"url":"rtsp://..."}}} (${(e as Error).message})`,
      });
    }
    try {
      const view = await c.add(entry);
      c.log.info({ stream: view.name }, 'stream added over HTTP');
      return json(res, 201, view);
    } catch (e) {
      return json(res, statusOf(e), { error: (e as Error).message });
    }
  });
  http.routePrefix('/streams/', async (req, res) => {
    const name = decodeURIComponent((req.url ?? '').split('?')[0].slice('/streams/'.length));
    if (req.method === 'GET') {
      const view = c.list().find((v) => v.name === name);
      return view ? json(res, 200, view) : json(res, 404, { error: `no stream "${clipForLog(name, 80)}"` });
    }
    if (req.method !== 'DELETE') return json(res, 405, { error: 'use GET or DELETE on /streams/NAME' });
    if (!allowedToChange(req, res, c)) return;
    try {
      await c.remove(name);
      c.log.info({ stream: name }, 'stream removed over HTTP');
      res.writeHead(204).end();
    } catch (e) {
      return json(res, statusOf(e), { error: (e as Error).message });
    }
  });
}

function allowedToChange(req: IncomingMessage, res: ServerResponse, c: StreamControl): boolean {
  if (!c.admin) {
    json(res, 403, { error: 'adding and removing streams is off: set server.admin: true in a pipeline with a streams: list' });
    return false;
  }
  const remote = req.socket.remoteAddress ?? '';
  if (!isLoopback(remote)) {
    c.log.warn({ remote }, 'stream change refused: not a loopback client');
    json(res, 403, { error: 'streams may be changed from this machine only' });
    return false;
  }
  const token = process.env.DCL_TOKEN;
  if (token !== undefined && token !== '') {
    if (presentedToken(req) !== token) {
      json(res, 401, { error: 'a valid access token is required (the one in DCL_TOKEN)' });
      return false;
    }
  }
  return true;
}

function statusOf(e: unknown): number {
  const s = (e as { status?: unknown }).status;
  return typeof s === 'number' ? s : 500;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error(`body larger than ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
}
