/**
 * Streaming `.npz` writer (a ZIP archive of `.npy` members, as read by
 * `numpy.load`) and a small in-memory `.npz` reader.
 *
 * The writer never holds a whole array: each `write(chunk)` is deflated by
 * Node's native zlib (or passed through) into fflate's streaming `Zip` container
 * and handed to a file write stream, waiting for 'drain' when the stream's buffer
 * is full. Memory use is bounded by roughly one chunk.
 *
 * ZIP64 LIMIT: fflate's `Zip` writes classic (32-bit) ZIP records only: entry
 * sizes, local-header offsets and the central-directory offset must all stay
 * below 0xFFFFFFFF bytes (4 GiB - 1). So:
 *   - one array's `.npy` member (header + data, uncompressed) must be < 4 GiB:
 *     checked in `beginArray`, before anything is written. For float32 depth at
 *     1024x576 that is about 1820 frames; at 512x288, about 7280 frames.
 *   - the whole archive must be < 4 GiB: checked while writing (compressed sizes
 *     are only known as they are produced). Crossing it fails the writer with a
 *     clear error; the partial file is deleted on `close()`/`abort()`.
 * Split longer outputs into several files (or use uint16) to stay within it.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile, rename, stat, unlink } from 'node:fs/promises';
import { partialPath } from './partial-file.js';
import { once } from 'node:events';
import { Zip, unzipSync, type AsyncFlateStreamHandler, type ZipInputFile } from 'fflate';
import { constants as zlibConstants, crc32, deflateRaw, deflateRawSync } from 'node:zlib';
import { buildNpyHeader, bytesPerElement, parseNpy, shapeSize, type NpyArray, type NpyDtype, type NpyTypedArray } from './npy.js';

export type { NpyArray, NpyDtype, NpyTypedArray } from './npy.js';

/** Largest value a classic (non-ZIP64) ZIP size/offset field can hold; 0xFFFFFFFF itself means "see ZIP64". */
export const ZIP32_MAX_BYTES = 0xfffffffe;
/** Maximum number of entries in a classic ZIP archive. */
const ZIP32_MAX_ENTRIES = 0xffff;
/** Chunks at least this large are deflated on the thread pool (smaller ones are not worth the hop). */
const ASYNC_DEFLATE_BYTES = 64 * 1024;
/** Size of fflate's ZIP data descriptor (written after each streamed entry). */
const DATA_DESCRIPTOR_BYTES = 16;
/** Member timestamp: fixed, so identical arrays give identical bytes (numpy ignores it). */
const MEMBER_MTIME = new Date('2000-01-01T00:00:00Z');

/** readNpz refuses files larger than this: it decompresses everything in memory. */
const READ_NPZ_MAX_BYTES = 1024 * 1024 * 1024;

export type DeflateLevel = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;

export interface NpzWriterOptions {
  /** Deflate the members (like np.savez_compressed). Default true. */
  compress?: boolean;
  /** zlib level 1..9 when compressing. Default 1 (fastest; float data barely gains from higher levels). */
  level?: DeflateLevel;
  /**
   * Huffman coding only, no string matching (zlib's Z_HUFFMAN_ONLY). Default true: float32 depth has
   * almost no repeated strings, so it compresses as well (960x540 plane: ratio 0.870 vs 0.871 at
   * level 1) in a third of the time (15 vs 50 ms; fflate's JS deflate took 130 ms).
   */
  huffmanOnly?: boolean;
  /**
   * Archive size limit in bytes; defaults to (and may not exceed) ZIP32_MAX_BYTES.
   * Lower values exist for tests of the limit handling.
   */
  maxArchiveBytes?: number;
}

const TYPED_ARRAY_OF: Record<NpyDtype, { ctor: abstract new (...args: never[]) => NpyTypedArray; name: string }> = {
  float32: { ctor: Float32Array, name: 'Float32Array' },
  uint16: { ctor: Uint16Array, name: 'Uint16Array' },
  uint8: { ctor: Uint8Array, name: 'Uint8Array' },
};

function hostIsLittleEndian(): boolean {
  return new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
}

/** A ZIP member whose uncompressed size and CRC-32 are counted by native zlib as its bytes go by. */
abstract class NativeEntry implements ZipInputFile {
  abstract readonly compression: number;
  crc = 0;
  size = 0;
  mtime?: Date;
  ondata?: AsyncFlateStreamHandler;

  constructor(readonly filename: string) {}

  protected count(chunk: Uint8Array): void {
    this.crc = crc32(chunk, this.crc);
    this.size += chunk.length;
  }

  protected emit(out: Uint8Array, final: boolean): void {
    this.ondata!(null, new Uint8Array(out.buffer as ArrayBuffer, out.byteOffset, out.byteLength), final);
  }
}

/**
 * A ZIP member deflated by native zlib, one independent raw-deflate run per pushed chunk ended
 * with a sync flush (byte-aligned, not final), the last with a final block: their concatenation
 * is one valid deflate stream, and each push is one synchronous native call.
 */
class ZlibDeflateEntry extends NativeEntry {
  readonly compression = 8;
  private readonly opts: { level: number; strategy: number };

  constructor(filename: string, level: number, huffmanOnly: boolean) {
    super(filename);
    this.opts = { level, strategy: huffmanOnly ? zlibConstants.Z_HUFFMAN_ONLY : zlibConstants.Z_DEFAULT_STRATEGY };
  }

  /** Small pushes (the .npy header, the final empty block): synchronously. */
  push(chunk: Uint8Array, final: boolean): void {
    this.count(chunk);
    this.emit(deflateRawSync(chunk, this.flush(final)), final);
  }

  /**
   * Large pushes: deflated on libuv's thread pool, so the calling thread (the offline finaliser)
   * prepares the video frames meanwhile. The caller must leave `chunk` unchanged and await this
   * before the next push (the writer does: one write at a time).
   */
  async pushAsync(chunk: Uint8Array, final: boolean): Promise<void> {
    this.count(chunk);
    const out = await new Promise<Buffer>((resolve, reject) => deflateRaw(chunk, this.flush(final), (err, b) => (err ? reject(err) : resolve(b))));
    this.emit(out, final);
  }

  private flush(final: boolean) {
    return { ...this.opts, finishFlush: final ? zlibConstants.Z_FINISH : zlibConstants.Z_SYNC_FLUSH };
  }
}

/**
 * A stored (uncompressed) member: fflate's own stored entry computes the CRC in JS, which cost
 * more than writing the bytes (415 MB: ~0.6 s vs 0.07 s native).
 */
class NativeStoredEntry extends NativeEntry {
  readonly compression = 0;

  push(chunk: Uint8Array, final: boolean): void {
    this.count(chunk);
    this.emit(chunk, final);
  }
}

type ZipEntry = ZlibDeflateEntry | NativeStoredEntry;

/** Resolves on 'drain' (or 'close'); rejects on 'error'. Removes its listeners either way. */
function waitForDrain(ws: WriteStream): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      ws.off('drain', onDrain);
      ws.off('close', onDrain);
      ws.off('error', onError);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = (): void => done();
    const onError = (err: Error): void => done(err);
    ws.on('drain', onDrain);
    ws.on('close', onDrain);
    ws.on('error', onError);
  });
}

/** Streams one array into the archive. Obtained from `NpzWriter.beginArray`. */
export class NpzArrayWriter {
  readonly totalElements: number;
  private written = 0;
  private ended = false;

  /** @internal */
  constructor(
    private readonly owner: NpzWriter,
    private readonly entry: ZipEntry,
    readonly name: string,
    readonly dtype: NpyDtype,
    readonly shape: readonly number[],
  ) {
    this.totalElements = shapeSize(shape);
  }

  /** Elements accepted so far. */
  get elementsWritten(): number {
    return this.written;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /**
   * Appends elements in C order (e.g. one frame of an [N, H, W] array). Resolves
   * once the data was handed to the file stream and its buffer is below the
   * high-water mark; the chunk may be reused after that.
   */
  async write(chunk: NpyTypedArray): Promise<void> {
    const where = `npz array '${this.name}'`;
    if (this.ended) throw new Error(`${where}: write() after end()`);
    const want = TYPED_ARRAY_OF[this.dtype];
    if (!(chunk instanceof want.ctor)) {
      throw new Error(`${where}: expected a ${want.name} chunk for dtype ${this.dtype}, got ${chunk?.constructor?.name ?? typeof chunk}`);
    }
    if (this.written + chunk.length > this.totalElements) {
      throw new Error(
        `${where}: too many elements: shape [${this.shape.join(', ')}] holds ${this.totalElements}, ` +
          `${this.written} already written, chunk has ${chunk.length}`,
      );
    }
    this.written += chunk.length; // reserved synchronously so concurrent calls are checked too
    try {
      const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      await this.owner._push(this.entry, bytes, false);
    } catch (e) {
      this.written -= chunk.length;
      throw e;
    }
  }

  /** Finishes the member. Throws (leaving the member open) if fewer elements than the shape needs were written. */
  async end(): Promise<void> {
    const where = `npz array '${this.name}'`;
    if (this.ended) throw new Error(`${where}: end() called twice`);
    if (this.written !== this.totalElements) {
      throw new Error(
        `${where}: element count mismatch: shape [${this.shape.join(', ')}] needs ${this.totalElements} elements, ` + `but ${this.written} were written`,
      );
    }
    this.ended = true; // set first: a second (concurrent) end() must not finalise the member twice
    await this.owner._push(this.entry, new Uint8Array(0), true);
    this.owner._entryEnded(this);
  }
}

/**
 * Writes an .npz archive to a file, one array at a time, streaming.
 *
 *   const w = await NpzWriter.create(path, { compress: true });
 *   const a = w.beginArray('depth', 'float32', [N, H, W]);
 *   for (const frame of frames) await a.write(frame);
 *   await a.end();
 *   await w.close();
 */
export class NpzWriter {
  private readonly zip: Zip;
  private active: NpzArrayWriter | null = null;
  private readonly names = new Set<string>();
  private bytesOut = 0;
  private needDrain = false;
  private failure: Error | null = null;
  private closed = false;
  private zipFinished = false;
  private readonly maxBytes: number;
  private readonly compress: boolean;
  private readonly level: DeflateLevel;
  private readonly huffmanOnly: boolean;

  private constructor(
    readonly path: string,
    private readonly ws: WriteStream,
    opts: NpzWriterOptions,
  ) {
    this.compress = opts.compress ?? true;
    this.level = opts.level ?? 1;
    this.huffmanOnly = opts.huffmanOnly ?? true;
    this.maxBytes = Math.min(opts.maxArchiveBytes ?? ZIP32_MAX_BYTES, ZIP32_MAX_BYTES);
    this.ws.on('error', (err) => this.fail(err));
    this.zip = new Zip((err, data, final) => {
      if (this.failure) return;
      if (err) {
        this.fail(err);
        return;
      }
      if (this.bytesOut + data.length > this.maxBytes) {
        this.fail(
          new Error(
            `NpzWriter: archive '${this.path}' would exceed ${this.maxBytes} bytes, the classic ZIP limit ` +
              '(fflate writes no ZIP64 records); split the output into several files',
          ),
        );
        return;
      }
      this.bytesOut += data.length;
      if (!this.ws.write(data)) this.needDrain = true;
      if (final) this.zipFinished = true;
    });
  }

  /**
   * Opens a new archive for `path`. It is written under a temporary name in the same folder and
   * renamed to `path` by close(), so `path` is either absent, the old file, or complete.
   */
  static async create(path: string, opts: NpzWriterOptions = {}): Promise<NpzWriter> {
    if (opts.level !== undefined && !(Number.isInteger(opts.level) && opts.level >= 1 && opts.level <= 9)) {
      throw new Error(`NpzWriter: level must be an integer 1..9, got ${String(opts.level)}`);
    }
    if (opts.maxArchiveBytes !== undefined && !(opts.maxArchiveBytes > 0)) {
      throw new Error(`NpzWriter: maxArchiveBytes must be positive, got ${String(opts.maxArchiveBytes)}`);
    }
    if (!hostIsLittleEndian()) throw new Error('NpzWriter: big-endian hosts are not supported');
    const ws = createWriteStream(partialPath(path), { flags: 'w' });
    try {
      await once(ws, 'open');
    } catch (e) {
      ws.destroy();
      throw new Error(`NpzWriter: cannot open '${path}' for writing: ${(e as Error).message}`, { cause: e });
    }
    return new NpzWriter(path, ws, opts);
  }

  /** Bytes of archive handed to the file stream so far. */
  get bytesWritten(): number {
    return this.bytesOut;
  }

  /**
   * Starts a new member `<name>.npy` (numpy key `name`). Only one array can be
   * open at a time; finish it with `end()` before beginning the next.
   */
  beginArray(name: string, dtype: NpyDtype, shape: readonly number[]): NpzArrayWriter {
    this.assertUsable();
    if (this.active) throw new Error(`NpzWriter: array '${this.active.name}' is still open; call end() on it before beginArray('${name}')`);
    if (typeof name !== 'string' || name.length === 0 || name.includes('\0')) {
      throw new Error(`NpzWriter: invalid array name ${JSON.stringify(name)}`);
    }
    if (this.names.has(name)) throw new Error(`NpzWriter: duplicate array name '${name}'`);
    if (!(dtype in TYPED_ARRAY_OF)) {
      throw new Error(`NpzWriter: unsupported dtype '${String(dtype)}' (valid: ${Object.keys(TYPED_ARRAY_OF).join(', ')})`);
    }
    if (this.names.size >= ZIP32_MAX_ENTRIES) throw new Error('NpzWriter: too many arrays for a classic ZIP archive');
    const header = buildNpyHeader(dtype, shape);
    const memberBytes = header.length + shapeSize(shape) * bytesPerElement(dtype);
    if (memberBytes > ZIP32_MAX_BYTES) {
      throw new Error(
        `NpzWriter: array '${name}' (${dtype} [${shape.join(', ')}]) is ${memberBytes} bytes as .npy, over the ` +
          `${ZIP32_MAX_BYTES}-byte classic ZIP limit (fflate writes no ZIP64); split it across several arrays or files`,
      );
    }
    const fileName = `${name}.npy`;
    if (!this.compress) {
      // Stored members have a known size: reject up front if the archive cannot hold it.
      const projected = this.bytesOut + 30 + Buffer.byteLength(fileName) + memberBytes + DATA_DESCRIPTOR_BYTES;
      if (projected > this.maxBytes) {
        throw new Error(
          `NpzWriter: adding array '${name}' would grow '${this.path}' to ${projected} bytes, over the ` +
            `${this.maxBytes}-byte classic ZIP limit (fflate writes no ZIP64); split the output into several files`,
        );
      }
    }
    const entry: ZipEntry = this.compress ? new ZlibDeflateEntry(fileName, this.level, this.huffmanOnly) : new NativeStoredEntry(fileName);
    entry.mtime = MEMBER_MTIME;
    this.zip.add(entry);
    this.names.add(name);
    const writer = new NpzArrayWriter(this, entry, name, dtype, shape);
    this.active = writer;
    entry.push(header, false); // small; backpressure is honoured on the next write
    this.throwIfFailed();
    return writer;
  }

  /**
   * Writes the central directory and closes the file. If an array is still
   * open (or an earlier error broke the archive), the partial file is deleted
   * and the promise rejects with a clear error.
   */
  async close(): Promise<void> {
    if (this.closed) throw new Error('NpzWriter: close() called twice');
    if (this.failure) {
      await this.abort();
      throw new Error(`NpzWriter: '${this.path}' was not completed (partial file deleted): ${this.failure.message}`, {
        cause: this.failure,
      });
    }
    if (this.active) {
      const a = this.active;
      await this.abort();
      throw new Error(
        `NpzWriter: close() while array '${a.name}' is open (${a.elementsWritten} of ${a.totalElements} elements written); ` + 'partial file deleted',
      );
    }
    this.closed = true;
    this.zip.end(); // emits the central directory synchronously
    const failure = this.failure as Error | null; // may have been set by the synchronous zip callback
    if (failure || !this.zipFinished) {
      const why = failure?.message ?? 'zip stream did not finish';
      this.closed = false;
      await this.abort();
      throw new Error(`NpzWriter: '${this.path}' was not completed (partial file deleted): ${why}`);
    }
    await new Promise<void>((resolve, reject) => {
      this.ws.end((err?: Error | null) => (err ? reject(err) : resolve()));
    });
    if (!this.ws.closed) await once(this.ws, 'close');
    await rename(partialPath(this.path), this.path);
  }

  /** Stops writing, closes the file and deletes it. Never throws. */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.active = null;
    try {
      this.zip.terminate();
    } catch {
      /* ignore */
    }
    if (!this.ws.destroyed) {
      const closedP = once(this.ws, 'close').catch(() => undefined);
      this.ws.destroy();
      await closedP;
    }
    await unlink(partialPath(this.path)).catch(() => undefined);
  }

  /** @internal Pushes bytes of the open entry and waits for the file stream to drain when needed. */
  async _push(entry: ZipEntry, bytes: Uint8Array, final: boolean): Promise<void> {
    this.assertUsable();
    if (!this.compress) {
      // fflate passes stored data straight to the file stream, which keeps a
      // reference until written: copy so the caller may reuse its buffer.
      entry.push(bytes.slice(), final);
    } else if (entry instanceof ZlibDeflateEntry && bytes.length >= ASYNC_DEFLATE_BYTES) {
      await entry.pushAsync(bytes, final); // into a new buffer: the caller may reuse its own once this resolves
    } else {
      entry.push(bytes, final);
    }
    this.throwIfFailed();
    if (this.needDrain) {
      this.needDrain = false;
      if (this.ws.writableNeedDrain) await waitForDrain(this.ws);
      this.throwIfFailed();
    }
  }

  /** @internal */
  _entryEnded(a: NpzArrayWriter): void {
    if (this.active === a) this.active = null;
  }

  private fail(err: Error): void {
    if (!this.failure) this.failure = err;
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  private assertUsable(): void {
    if (this.closed) throw new Error(`NpzWriter: '${this.path}' is already closed`);
    this.throwIfFailed();
  }
}

/**
 * Reads a whole .npz into memory: `{ key: { dtype, shape, data } }`, keys
 * without the `.npy` suffix (non-.npy members are skipped). Meant for small
 * files (tests, evaluation); refuses files over 1 GiB.
 */
export async function readNpz(path: string): Promise<Record<string, NpyArray>> {
  const st = await stat(path);
  if (st.size > READ_NPZ_MAX_BYTES) {
    throw new Error(`readNpz: '${path}' is ${st.size} bytes; readNpz loads everything in memory and is limited to ${READ_NPZ_MAX_BYTES}`);
  }
  const buf = await readFile(path);
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
  } catch (e) {
    throw new Error(`readNpz: '${path}' is not a readable zip archive: ${(e as Error).message}`, { cause: e });
  }
  const out: Record<string, NpyArray> = {};
  for (const [file, bytes] of Object.entries(files)) {
    if (!file.endsWith('.npy')) continue;
    const key = file.slice(0, -4);
    try {
      out[key] = parseNpy(bytes);
    } catch (e) {
      throw new Error(`readNpz: member '${file}' of '${path}': ${(e as Error).message}`, { cause: e });
    }
  }
  return out;
}
