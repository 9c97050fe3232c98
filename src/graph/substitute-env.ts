import { parse as parseYamlScalar } from 'yaml';
import { UserError } from '../util/errors.js';

// `${NAME}` and `${NAME:-default}` references in pipeline files. A value that is exactly one
// reference takes the YAML type of the substituted text (so `port: ${PORT:-8080}` is a number),
// and its text is remembered: where the schema wants a string (a password of digits, a user
// called "true"), the loader puts the text back (see RawTexts).

/** The original text of values that came from the environment or --set, by path (keys joined with "\u0000"). */
export type RawTexts = Map<string, { readonly text: string; readonly from: 'env' | 'set' }>;

export function pathKey(path: readonly (string | number)[]): string {
  return path.map(String).join('\u0000');
}

const REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export class MissingEnvError extends UserError {
  constructor(
    readonly variable: string,
    readonly path: string,
  ) {
    super(`environment variable ${variable} is not set (and no default is given with \${${variable}:-default})`);
  }
}

/** Deeper than any real pipeline file: a document that refers to itself (a YAML merge of its own anchor) or an attack. */
export const MAX_DEPTH = 32;

export class TooDeepError extends UserError {}

export function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, raw: RawTexts = new Map(), keys: readonly (string | number)[] = []): unknown {
  if (keys.length > MAX_DEPTH) throw new TooDeepError(`the document is nested more than ${MAX_DEPTH} levels deep (or refers to itself)`);
  const path = keys.reduce<string>((p, k) => (typeof k === 'number' ? `${p}[${k}]` : p ? `${p}.${k}` : k), '');
  if (typeof value === 'string') {
    const out = substituteString(value, env, path);
    if (out !== value) raw.set(pathKey(keys), { text: typeof out === 'string' ? out : String(envText(value, env)), from: 'env' });
    return out;
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, raw, [...keys, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substituteEnv(v, env, raw, [...keys, k]);
    return out;
  }
  return value;
}

/** The text a whole-value reference stands for. */
function envText(s: string, env: NodeJS.ProcessEnv): string {
  const whole = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}$/.exec(s)!;
  const v = env[whole[1]];
  return v !== undefined && v !== '' ? v : (whole[2] ?? '');
}

function substituteString(s: string, env: NodeJS.ProcessEnv, path: string): unknown {
  const whole = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}$/.exec(s);
  const lookup = (name: string, fallback: string | undefined): string => {
    const v = env[name];
    if (v !== undefined && v !== '') return v;
    if (fallback !== undefined) return fallback;
    throw new MissingEnvError(name, path);
  };
  if (whole) return parseScalar(lookup(whole[1], whole[2]));
  return s.replace(REF, (_m, name: string, fallback: string | undefined) => lookup(name, fallback));
}

/** Parse a command-line or environment value with YAML scalar rules (numbers, booleans, strings). */
export function parseScalar(text: string): unknown {
  try {
    const v = parseYamlScalar(text);
    return v === null || typeof v === 'object' ? text : v;
  } catch {
    return text;
  }
}
