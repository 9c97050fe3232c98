import { parse as parseYamlScalar } from 'yaml';

// `${NAME}` and `${NAME:-default}` references in pipeline files. A value that is exactly one
// reference takes the YAML type of the substituted text (so `port: ${PORT:-8080}` is a number).

const REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export class MissingEnvError extends Error {
  constructor(readonly variable: string, readonly path: string) {
    super(`environment variable ${variable} is not set (and no default is given with \${${variable}:-default})`);
  }
}

export function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, path = ''): unknown {
  if (typeof value === 'string') return substituteString(value, env, path);
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, `${path}[${i}]`));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substituteEnv(v, env, path ? `${path}.${k}` : k);
    return out;
  }
  return value;
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
