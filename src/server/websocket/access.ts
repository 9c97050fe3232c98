import type { IncomingMessage } from 'node:http';
import { presentedToken } from '../http-hub.js';
import { clipForLog } from '../../util/redact.js';
import { OptionError } from '../../util/errors.js';

// Who may open a WebSocket: browsers only from the same origin or an allowed one (a hostile page
// cannot read the camera through the visitor's browser), and anyone only with the token when one
// is configured.

/** The access token from the environment variable `envName`; undefined when unset (no token required). */
export function accessToken(envName: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const value = env[envName];
  if (value !== undefined && value.trim() === '') {
    throw new OptionError(`${envName} is set but empty: set it to a token to require one, or unset it to allow any client`);
  }
  return value;
}

export interface Refusal {
  readonly status: number;
  readonly reason: string;
}

/** Why an upgrade request may not connect, or null when it may. */
export function checkAccess(req: IncomingMessage, token: string | undefined, allowedOrigins: readonly string[]): Refusal | null {
  const origin = req.headers.origin;
  if (origin !== undefined && !sameOrigin(origin, req.headers.host) && !allowedOrigins.includes(origin) && !allowedOrigins.includes('*')) {
    return { status: 403, reason: `origin ${clipForLog(origin, 200)} is not allowed` };
  }
  if (token !== undefined && presentedToken(req) !== token) return { status: 401, reason: 'a valid access token is required' };
  return null;
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}
