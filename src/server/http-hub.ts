import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { isIP, type AddressInfo } from 'node:net';
import type { Logger } from 'pino';

// The pipeline's one HTTP server. Nodes mount routes and WebSocket endpoints on it before it
// starts listening; the hub itself knows nothing about frames. It answers only requests whose
// Host header names this server: an IP address, localhost, or a configured name. A web page on
// attacker.example whose DNS name is rebound to 127.0.0.1 sends "Host: attacker.example" and is
// refused (DNS rebinding), so browsing a hostile site cannot read the camera's frames.

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export class HttpHub {
  private readonly routes = new Map<string, RouteHandler>();
  /** Routes for every path under a prefix ending in "/" (e.g. /streams/NAME). */
  private readonly prefixes = new Map<string, RouteHandler>();
  private readonly upgrades = new Map<string, UpgradeHandler>();
  private server: Server | null = null;
  /** While the pipeline's nodes are being created, paths nobody has mounted yet answer 503 instead of 404. */
  starting = false;
  private readonly allowedHosts: ReadonlySet<string>;

  constructor(
    private readonly log: Logger,
    opts: { allowedHosts?: readonly string[] } = {},
  ) {
    this.allowedHosts = new Set((opts.allowedHosts ?? []).map((h) => h.toLowerCase()));
  }

  /** Whether a request's Host header names this server (see the comment at the top). */
  hostAllowed(host: string | undefined): boolean {
    return hostAllowed(host, this.allowedHosts);
  }

  route(path: string, handler: RouteHandler): void {
    if (this.routes.has(path)) throw new Error(`HTTP route ${path} is mounted twice`);
    this.routes.set(path, handler);
  }

  routePrefix(prefix: string, handler: RouteHandler): void {
    if (!prefix.endsWith('/')) throw new Error(`route prefix ${prefix} must end with "/"`);
    if (this.prefixes.has(prefix)) throw new Error(`HTTP route prefix ${prefix} is mounted twice`);
    this.prefixes.set(prefix, handler);
  }

  upgrade(path: string, handler: UpgradeHandler): void {
    if (this.upgrades.has(path)) throw new Error(`WebSocket path ${path} is mounted twice`);
    this.upgrades.set(path, handler);
  }

  hasRoute(path: string): boolean {
    return this.routes.has(path);
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    const server = createServer((req, res) => {
      if (!this.hostAllowed(req.headers.host)) {
        this.log.warn({ host: req.headers.host }, 'HTTP request refused: Host header does not name this server');
        res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' }).end(hostRefusal(req.headers.host));
        return;
      }
      const path = (req.url ?? '/').split('?')[0];
      const handler = this.routes.get(path) ?? [...this.prefixes].find(([p]) => path.startsWith(p) && path.length > p.length)?.[1];
      if (!handler) {
        if (this.starting)
          res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' }).end('the pipeline is starting (loading models); try again shortly\n');
        else res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}\n`);
        return;
      }
      Promise.resolve(handler(req, res)).catch((err: unknown) => {
        this.log.error({ err, path }, 'HTTP handler failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('internal error\n');
      });
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // A client may reset the connection at any moment (even before reading a refusal): without
      // a listener its ECONNRESET would be an uncaught exception that takes the process down.
      socket.on('error', (err) => this.log.debug({ err }, 'upgrade connection error'));
      if (!this.hostAllowed(req.headers.host)) {
        this.log.warn({ host: req.headers.host }, 'WebSocket connection refused: Host header does not name this server');
        refuseUpgrade(socket, 403, hostRefusal(req.headers.host).trim());
        return;
      }
      const path = (req.url ?? '/').split('?')[0];
      const handler = this.upgrades.get(path);
      if (!handler) {
        if (this.starting) refuseUpgrade(socket, 503, 'the pipeline is starting (loading models); try again shortly');
        else refuseUpgrade(socket, 404, `no WebSocket endpoint at ${path}`);
        return;
      }
      handler(req, socket, head);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new Error(
            `cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'the port is in use (choose another with --set server.port=N)' : err.message}`,
          ),
        ),
      );
      server.listen(port, host, () => resolve());
    });
    return server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** Answer an upgrade request with an HTTP error and close the connection (the client may already be gone). */
export function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  if (socket.destroyed) return;
  const body = `${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function hostRefusal(host: string | undefined): string {
  return `host ${JSON.stringify((host ?? '').slice(0, 100))} is not allowed: add it to server.allowedHosts in the pipeline file\n`;
}

/**
 * A Host header is allowed when it is missing (HTTP/1.0 clients), an IP literal (a rebound DNS
 * name never is one), localhost, or listed (case-insensitive; "*" allows any).
 */
export function hostAllowed(host: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (host === undefined || host === '') return true;
  if (allowed.has('*')) return true;
  const h = host.toLowerCase();
  let name: string;
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0) return false;
    name = h.slice(1, end);
    return isIP(name) === 6 && /^(:\d{1,5})?$/.test(h.slice(end + 1));
  }
  const colon = h.lastIndexOf(':');
  name = colon >= 0 ? h.slice(0, colon) : h;
  if (colon >= 0 && !/^\d{1,5}$/.test(h.slice(colon + 1))) return false;
  if (isIP(name) === 4) return true;
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  return allowed.has(name);
}

export function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address === 'localhost' || address.startsWith('::ffff:127.');
}

/** The access token a request presents: `?token=` or `Authorization: Bearer TOKEN`. */
export function presentedToken(req: IncomingMessage): string | undefined {
  return new URL(req.url ?? '/', 'http://x').searchParams.get('token') ?? req.headers.authorization?.replace(/^Bearer\s+/i, '');
}
