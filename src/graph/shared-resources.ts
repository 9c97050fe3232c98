// Resources that nodes of one graph share by key (an inference worker holding a model pack):
// the first node to ask creates it, the others get the same one, and the last to let go
// disposes of it. A creation that fails is forgotten, so a later node may try again.

interface Entry {
  readonly value: Promise<unknown>;
  users: number;
  readonly dispose: (value: never) => Promise<void> | void;
}

export interface Lease<T> {
  readonly value: T;
  /** Whether this lease created the resource (the first user). */
  readonly created: boolean;
  release(): Promise<void>;
}

export class SharedResources {
  private readonly entries = new Map<string, Entry>();

  async acquire<T>(key: string, create: () => Promise<T>, dispose: (value: T) => Promise<void> | void): Promise<Lease<T>> {
    let entry = this.entries.get(key);
    const created = entry === undefined;
    if (!entry) {
      entry = { value: create(), users: 0, dispose: dispose as Entry['dispose'] };
      this.entries.set(key, entry);
    }
    entry.users++;
    const e = entry;
    let value: T;
    try {
      value = (await e.value) as T;
    } catch (err) {
      e.users--;
      if (this.entries.get(key) === e) this.entries.delete(key);
      throw err;
    }
    let released = false;
    return {
      value,
      created,
      release: async () => {
        if (released) return;
        released = true;
        if (--e.users > 0) return;
        if (this.entries.get(key) === e) this.entries.delete(key);
        await e.dispose(value as never);
      },
    };
  }

  /** Keys held now (for tests and /streams). */
  keys(): string[] {
    return [...this.entries.keys()];
  }
}
