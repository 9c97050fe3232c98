/**
 * NumPy `.npy` format helpers (format version 1.0 for writing; 1.0, 2.0 and
 * 3.0 headers are accepted when reading).
 *
 * Layout of a v1.0 file:
 *   magic "\x93NUMPY" (6 bytes) | major=1 | minor=0 | uint16 LE header length |
 *   header: Python dict literal, padded with spaces, terminated by "\n" |
 *   raw array bytes (C order)
 *
 * The header is padded so that the array data starts at a multiple of 64 bytes,
 * and (like NumPy >= 1.23) it reserves room so that the first shape axis can be
 * grown in place: the dict text is followed by `21 - len(repr(shape[0]))` spaces
 * before the alignment padding. With this, headers are byte-identical to what
 * `numpy.save` writes for the same dtype and shape.
 */

/** Element types this project reads and writes. */
export type NpyDtype = 'float32' | 'uint16' | 'uint8';
/** Element types accepted when reading (float64 arrays come from Python tools). */
export type NpyReadDtype = NpyDtype | 'float64';
/** Descriptor strings accepted on input (NumPy writes '|u1' for uint8). */
export type NpyDescr = '<f4' | '<u2' | '<u1' | '|u1';

export type NpyTypedArray = Float32Array | Uint16Array | Uint8Array;
export type NpyReadTypedArray = NpyTypedArray | Float64Array;

export const NPY_MAGIC = Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59); // "\x93NUMPY"
/** Data offset alignment used by NumPy (numpy.lib.format.ARRAY_ALIGN). */
export const NPY_ALIGN = 64;
/** Spare digits reserved for in-place growth of the shape (numpy GROWTH_AXIS_MAX_DIGITS). */
const GROWTH_AXIS_MAX_DIGITS = 21;

const DESCR_OF: Record<NpyDtype, string> = { float32: '<f4', uint16: '<u2', uint8: '|u1' };

const DTYPE_OF_DESCR: Record<string, NpyReadDtype> = {
  '<f4': 'float32',
  '<u2': 'uint16',
  '<u1': 'uint8',
  '|u1': 'uint8',
  '<f8': 'float64',
};

const BYTES_PER_ELEMENT: Record<NpyReadDtype, number> = { float32: 4, uint16: 2, uint8: 1, float64: 8 };

export function bytesPerElement(dtype: NpyReadDtype): number {
  return BYTES_PER_ELEMENT[dtype];
}

/** The descriptor NumPy writes for a dtype ('<f4', '<u2', '|u1'). */
export function dtypeToDescr(dtype: NpyDtype): string {
  const d = DESCR_OF[dtype];
  if (d === undefined) throw new Error(`npy: unsupported dtype '${String(dtype)}' (valid: ${Object.keys(DESCR_OF).join(', ')})`);
  return d;
}

/** Maps a descriptor to a dtype; throws a clear error for anything unsupported. */
export function descrToDtype(descr: string): NpyReadDtype {
  const d = DTYPE_OF_DESCR[descr];
  if (d === undefined) {
    throw new Error(`npy: unsupported dtype descriptor '${descr}' (supported: ${Object.keys(DTYPE_OF_DESCR).join(', ')})`);
  }
  return d;
}

function normaliseDtype(dtypeOrDescr: NpyDtype | NpyDescr): NpyDtype {
  if (dtypeOrDescr in DESCR_OF) return dtypeOrDescr as NpyDtype;
  const d = DTYPE_OF_DESCR[dtypeOrDescr];
  if (d === undefined || d === 'float64') {
    throw new Error(`npy: unsupported dtype '${String(dtypeOrDescr)}' for writing (valid: float32/'<f4', uint16/'<u2', uint8/'<u1'/'|u1')`);
  }
  return d;
}

function checkShape(shape: readonly number[]): void {
  for (const n of shape) {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new Error(`npy: invalid shape [${shape.join(', ')}]: every axis must be a non-negative integer`);
    }
  }
}

/** Number of elements of a shape (1 for a 0-d shape). */
export function shapeSize(shape: readonly number[]): number {
  checkShape(shape);
  let n = 1;
  for (const s of shape) n *= s;
  if (!Number.isSafeInteger(n)) throw new Error(`npy: shape [${shape.join(', ')}] has too many elements`);
  return n;
}

/** Python repr of a tuple of ints: (), (5,), (2, 3, 4). */
function shapeRepr(shape: readonly number[]): string {
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

/** The header dict text (without padding) exactly as NumPy formats it. */
export function npyHeaderDict(dtype: NpyDtype | NpyDescr, shape: readonly number[]): string {
  checkShape(shape);
  const descr = dtypeToDescr(normaliseDtype(dtype));
  return `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeRepr(shape)}, }`;
}

/**
 * Builds a complete .npy v1.0 header (magic + version + length + padded dict +
 * "\n") for a C-ordered array. Its length is a multiple of 64.
 */
export function buildNpyHeader(dtype: NpyDtype | NpyDescr, shape: readonly number[]): Uint8Array {
  let dict = npyHeaderDict(dtype, shape);
  if (shape.length > 0) dict += ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length));
  const prefixLen = NPY_MAGIC.length + 2 + 2; // magic, version, uint16 length
  const unpadded = prefixLen + dict.length + 1; // + '\n'
  // NumPy always adds 1..64 spaces (64 when already aligned).
  const padLen = NPY_ALIGN - (unpadded % NPY_ALIGN);
  const headerLen = dict.length + padLen + 1;
  if (headerLen > 0xffff) throw new Error(`npy: header too long for format 1.0 (${headerLen} bytes)`);
  const out = new Uint8Array(prefixLen + headerLen);
  out.set(NPY_MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  out[8] = headerLen & 0xff;
  out[9] = headerLen >> 8;
  let p = prefixLen;
  for (let i = 0; i < dict.length; i++) out[p++] = dict.charCodeAt(i); // ASCII only
  out.fill(0x20, p, p + padLen);
  p += padLen;
  out[p] = 0x0a;
  return out;
}

export interface NpyHeader {
  /** Format version, e.g. [1, 0]. */
  version: [number, number];
  descr: string;
  dtype: NpyReadDtype;
  fortranOrder: boolean;
  shape: number[];
  /** Byte offset of the array data from the start of the file. */
  dataOffset: number;
}

/** Parses the header at the start of a .npy buffer. */
export function parseNpyHeader(buf: Uint8Array): NpyHeader {
  if (buf.length < 10) throw new Error(`npy: buffer too short for a header (${buf.length} bytes)`);
  for (let i = 0; i < NPY_MAGIC.length; i++) {
    if (buf[i] !== NPY_MAGIC[i]) throw new Error('npy: bad magic string (not a .npy file)');
  }
  const major = buf[6];
  const minor = buf[7];
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = buf[8] | (buf[9] << 8);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw new Error('npy: buffer too short for a v2/v3 header');
    headerLen = (buf[8] | (buf[9] << 8) | (buf[10] << 16)) + buf[11] * 0x1000000;
    start = 12;
  } else {
    throw new Error(`npy: unsupported format version ${major}.${minor}`);
  }
  const dataOffset = start + headerLen;
  if (dataOffset > buf.length) throw new Error(`npy: header length ${headerLen} runs past the end of the buffer`);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(buf.subarray(start, dataOffset));

  const descrM = /'descr'\s*:\s*'([^']*)'/.exec(text);
  const fortranM = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shapeM = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descrM || !fortranM || !shapeM) throw new Error(`npy: cannot parse header ${JSON.stringify(text.trim())}`);
  const descr = descrM[1];
  const shape: number[] = [];
  for (const part of shapeM[1].split(',')) {
    const t = part.trim();
    if (t === '') continue;
    if (!/^\d+L?$/.test(t)) throw new Error(`npy: bad shape entry '${t}' in header`);
    shape.push(Number.parseInt(t, 10));
  }
  return {
    version: [major, minor],
    descr,
    dtype: descrToDtype(descr),
    fortranOrder: fortranM[1] === 'True',
    shape,
    dataOffset,
  };
}

export interface NpyArray {
  dtype: NpyReadDtype;
  shape: number[];
  data: NpyReadTypedArray;
}

function hostIsLittleEndian(): boolean {
  return new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
}

/** Decodes a complete .npy buffer. The data is copied into a fresh, aligned typed array. */
export function parseNpy(buf: Uint8Array): NpyArray {
  const h = parseNpyHeader(buf);
  if (h.fortranOrder) throw new Error('npy: fortran_order=True arrays are not supported');
  if (!hostIsLittleEndian()) throw new Error('npy: big-endian hosts are not supported');
  const n = shapeSize(h.shape);
  const nbytes = n * bytesPerElement(h.dtype);
  if (buf.length - h.dataOffset < nbytes) {
    throw new Error(`npy: truncated data: shape [${h.shape.join(', ')}] needs ${nbytes} bytes, got ${buf.length - h.dataOffset}`);
  }
  const bytes = buf.slice(h.dataOffset, h.dataOffset + nbytes); // copy => offset 0, aligned
  let data: NpyReadTypedArray;
  switch (h.dtype) {
    case 'float32':
      data = new Float32Array(bytes.buffer, 0, n);
      break;
    case 'uint16':
      data = new Uint16Array(bytes.buffer, 0, n);
      break;
    case 'uint8':
      data = bytes;
      break;
    case 'float64':
      data = new Float64Array(bytes.buffer, 0, n);
      break;
  }
  return { dtype: h.dtype, shape: h.shape, data };
}
