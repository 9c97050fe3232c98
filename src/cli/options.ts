/** Commander collector for repeatable `--set a.b=c` options. */
export function collectSet(value: string, previous: string[]): string[] {
  return [...previous, value];
}
