import { InvalidArgumentError } from 'commander';
/** Commander collector for repeatable `--set a.b=c` options. */
export function collectSet(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Commander parser for integer options; the message names the option. */
export const intOption =
  (name: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} must be an integer`);
    return n;
  };

/** Commander parser for finite numbers. */
export const numberOption =
  (name: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
    return n;
  };

/** Commander parser for positive numbers. */
export const positiveOption =
  (name: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
