import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';

import { buildNpyHeader, parseNpy, parseNpyHeader, npyHeaderDict } from '../src/io/npy.js';
import { NpzWriter, readNpz, ZIP32_MAX_BYTES } from '../src/io/npz-writer.js';
import { decodePng, encodePng16Gray, encodePngRGB } from '../src/io/png16.js';
import { applyColormap, colormapByName, colormapIndex, COLORMAP_NAMES, GRAY_LUT, INFERNO_LUT, TURBO_LUT } from '../src/io/colormap.js';

const PY = '/usr/bin/python3';

function pythonHas(...mods: string[]): boolean {
  if (!existsSync(PY)) return false;
  const r = spawnSync(PY, ['-c', mods.map((m) => `import ${m}`).join('; ')], { stdio: 'ignore' });
  return r.status === 0;
}

function runPython(code: string, args: string[] = []): string {
  const r = spawnSync(PY, ['-c', code, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, `python failed:\n${r.stderr}`);
  return r.stdout;
}

const HAVE_NUMPY = pythonHas('numpy');
const HAVE_PIL = pythonHas('numpy', 'PIL.Image');
const HAVE_MPL = pythonHas('numpy', 'matplotlib');
const NO_NUMPY = `${PY} with numpy not available: numpy cross-check skipped`;

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'io-test-'));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('latin1');
}

function sha256(a: ArrayBufferView): string {
  return createHash('sha256')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');
}

/** Deterministic frame content: frame f, pixel i. */
function frameValue(f: number, i: number): number {
  return Math.sin(f * 0.37 + i * 0.011) * 0.5 + 0.5;
}

// ---------------------------------------------------------------------------
describe('npy header', () => {
  test("'<f4' shape (2, 3, 4) is byte-identical to numpy's header", () => {
    const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }";
    // numpy: 10-byte prefix + dict + spaces + '\n', total a multiple of 64 (here 128).
    const expected = '\x93NUMPY\x01\x00' + String.fromCharCode(118, 0) + dict + ' '.repeat(128 - 10 - dict.length - 1) + '\n';
    const h = buildNpyHeader('<f4', [2, 3, 4]);
    assert.equal(h.length, 128);
    assert.equal(latin1(h), expected);
    assert.equal(npyHeaderDict('float32', [2, 3, 4]), dict);
  });

  test('dtype descriptors and shape reprs follow numpy (uint8 is "|u1", 1-d has a trailing comma)', () => {
    // eslint-disable-next-line no-control-regex -- the npy magic and version bytes are control characters
    assert.match(latin1(buildNpyHeader('<u2', [5])), /^\x93NUMPY\x01\x00v\x00\{'descr': '<u2', 'fortran_order': False, 'shape': \(5,\), \} +\n$/);
    assert.match(latin1(buildNpyHeader('<u1', [])), /\{'descr': '\|u1', 'fortran_order': False, 'shape': \(\), \} +\n$/);
    assert.equal(latin1(buildNpyHeader('uint8', [3, 4])), latin1(buildNpyHeader('<u1', [3, 4])));
    assert.equal(latin1(buildNpyHeader('float32', [7, 1])), latin1(buildNpyHeader('<f4', [7, 1])));
  });

  test('numpy >= 1.23 growth padding: 21 - len(str(shape[0])) extra spaces before alignment', () => {
    // 16-d uint8 shape: the dict is 101 chars; numpy.save writes a 192-byte header
    // (it would be 128 without the reserved growth space).
    const shape = new Array(16).fill(2);
    const h = buildNpyHeader('uint8', shape);
    assert.equal(h.length, 192);
    const dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (" + shape.join(', ') + '), }';
    assert.equal(latin1(h), '\x93NUMPY\x01\x00' + String.fromCharCode(182, 0) + dict + ' '.repeat(192 - 10 - dict.length - 1) + '\n');
  });

  test('data offset is always a multiple of 64 and the header ends with a newline', () => {
    const shapes = [[], [0], [1], [123456789012], [100, 48, 64], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]];
    for (const s of shapes) {
      const h = buildNpyHeader('<f4', s);
      assert.equal(h.length % 64, 0, `shape ${s}`);
      assert.equal(h[h.length - 1], 0x0a);
      assert.equal(h[8] | (h[9] << 8), h.length - 10);
      const p = parseNpyHeader(h);
      assert.deepEqual(p.shape, s);
      assert.equal(p.dataOffset, h.length);
      assert.equal(p.fortranOrder, false);
      assert.equal(p.dtype, 'float32');
    }
  });

  test('parse rejects bad magic and unsupported dtypes with clear errors', () => {
    const h = buildNpyHeader('<f4', [2]);
    const bad = h.slice();
    bad[1] = 0x41;
    assert.throws(() => parseNpyHeader(bad), /bad magic/);
    const text = latin1(h).replace("'<f4'", "'<c8'");
    assert.throws(() => parseNpyHeader(Buffer.from(text, 'latin1')), /unsupported dtype descriptor '<c8'/);
    assert.throws(() => buildNpyHeader('<f4', [2, -1]), /invalid shape/);
  });

  test('parseNpy reads header + data back', () => {
    const h = buildNpyHeader('<u2', [2, 2]);
    const data = Uint16Array.of(0, 1, 256, 65535);
    const buf = new Uint8Array(h.length + data.byteLength);
    buf.set(h);
    buf.set(new Uint8Array(data.buffer), h.length);
    const a = parseNpy(buf);
    assert.equal(a.dtype, 'uint16');
    assert.deepEqual(a.shape, [2, 2]);
    assert.deepEqual(Array.from(a.data), [0, 1, 256, 65535]);
    assert.throws(() => parseNpy(buf.subarray(0, buf.length - 1)), /truncated data/);
  });

  test('headers match numpy.save byte for byte (python cross-check)', (t) => {
    if (!HAVE_NUMPY) return t.skip(NO_NUMPY);
    const cases: Array<[string, number[]]> = [
      ['<f4', [2, 3, 4]],
      ['<u2', [5]],
      ['<u1', []],
      ['<f4', [100, 48, 64]],
      ['<u2', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]],
      ['<f4', [123456789012, 0]],
      ['<u1', new Array(16).fill(2)],
    ];
    const code = `
import io, json, sys, numpy as np
out = []
for dt, shp in json.loads(sys.argv[1]):
    b = io.BytesIO(); np.save(b, np.zeros(shp, dtype=dt)); v = b.getvalue()
    n = int.from_bytes(v[8:10], 'little')
    out.append(v[:10 + n].hex())
print(json.dumps(out))`;
    // np.zeros of 123456789012 x 0 elements is empty, so this stays cheap.
    const hexes = JSON.parse(runPython(code, [JSON.stringify(cases)])) as string[];
    cases.forEach(([dt, shp], i) => {
      assert.equal(Buffer.from(buildNpyHeader(dt as '<f4', shp)).toString('hex'), hexes[i], `${dt} ${JSON.stringify(shp)}`);
    });
  });
});

// ---------------------------------------------------------------------------
describe('npz writer', () => {
  for (const compress of [true, false]) {
    test(`round trip float32 + uint16 + uint8 through readNpz (compress=${compress})`, async () => {
      const path = join(dir, `rt-${compress}.npz`);
      const w = await NpzWriter.create(path, { compress });
      const f = Float32Array.from({ length: 24 }, (_, i) => i * 0.25 - 3);
      const a = w.beginArray('depth', 'float32', [2, 3, 4]);
      await a.write(f.subarray(0, 12));
      await a.write(f.subarray(12));
      await a.end();
      const u16 = Uint16Array.of(0, 1, 256, 65535, 4242, 7);
      const b = w.beginArray('depth16', 'uint16', [3, 2]);
      await b.write(u16);
      await b.end();
      const u8 = Uint8Array.of(0, 128, 255);
      const c = w.beginArray('mask', 'uint8', [3]);
      await c.write(u8);
      await c.end();
      await w.close();

      const r = await readNpz(path);
      assert.deepEqual(Object.keys(r).sort(), ['depth', 'depth16', 'mask']);
      assert.equal(r.depth.dtype, 'float32');
      assert.deepEqual(r.depth.shape, [2, 3, 4]);
      assert.ok(r.depth.data instanceof Float32Array);
      assert.deepEqual(Array.from(r.depth.data), Array.from(f));
      assert.equal(r.depth16.dtype, 'uint16');
      assert.deepEqual(r.depth16.shape, [3, 2]);
      assert.ok(r.depth16.data instanceof Uint16Array);
      assert.deepEqual(Array.from(r.depth16.data), Array.from(u16));
      assert.equal(r.mask.dtype, 'uint8');
      assert.deepEqual(Array.from(r.mask.data), [0, 128, 255]);
    });
  }

  test('streams 100 frames of 64x48 with compression, reusing one frame buffer', async () => {
    const N = 100,
      H = 48,
      W = 64,
      P = H * W;
    const path = join(dir, 'stream.npz');
    const w = await NpzWriter.create(path, { compress: true, level: 6, huffmanOnly: false });
    const a = w.beginArray('depth', 'float32', [N, H, W]);
    const frame = new Float32Array(P); // reused: the writer must not keep a reference to it
    for (let f = 0; f < N; f++) {
      for (let i = 0; i < P; i++) frame[i] = Math.round(frameValue(f, i) * 64) / 64; // compressible
      await a.write(frame);
      assert.equal(a.elementsWritten, (f + 1) * P);
    }
    await a.end();
    await w.close();
    const rawBytes = N * P * 4;
    assert.ok(statSync(path).size < rawBytes / 2, `expected compression, got ${statSync(path).size} of ${rawBytes}`);
    assert.equal(w.bytesWritten, statSync(path).size);

    const r = await readNpz(path);
    assert.deepEqual(r.depth.shape, [N, H, W]);
    const d = r.depth.data;
    let mismatches = 0;
    for (let f = 0; f < N; f++) {
      for (let i = 0; i < P; i++) if (d[f * P + i] !== Math.fround(Math.round(frameValue(f, i) * 64) / 64)) mismatches++;
    }
    assert.equal(mismatches, 0);
  });

  for (const [N, P] of [
    [300, 256],
    [20, 64 * 1024],
  ]) {
    // 1 KiB frames stay below the 16 KiB stream high-water mark (no drain wait, data still queued
    // when write() resolves); 256 KiB frames always wait for 'drain'.
    test(`stored (uncompressed) streaming with a reused ${P * 4}-byte frame buffer`, async () => {
      const path = join(dir, `stored-${P}.npz`);
      const w = await NpzWriter.create(path, { compress: false });
      const a = w.beginArray('x', 'float32', [N, P]);
      const frame = new Float32Array(P);
      for (let f = 0; f < N; f++) {
        frame.fill(f + 0.5);
        await a.write(frame);
      }
      await a.end();
      await w.close();
      assert.ok(statSync(path).size > N * P * 4);
      const r = await readNpz(path);
      for (let f = 0; f < N; f++) {
        assert.equal(r.x.data[f * P], f + 0.5);
        assert.equal(r.x.data[f * P + P - 1], f + 0.5);
      }
    });
  }

  test('wrong element counts and chunk types give clear errors', async () => {
    const path = join(dir, 'count.npz');
    const w = await NpzWriter.create(path, { compress: true });
    const a = w.beginArray('depth', 'float32', [2, 3, 4]);
    await a.write(new Float32Array(20));
    await assert.rejects(a.end(), /npz array 'depth': element count mismatch: shape \[2, 3, 4\] needs 24 elements, but 20 were written/);
    await assert.rejects(a.write(new Float32Array(5)), /too many elements: shape \[2, 3, 4\] holds 24, 20 already written, chunk has 5/);
    await assert.rejects(a.write(new Uint16Array(4) as unknown as Float32Array), /expected a Float32Array chunk for dtype float32, got Uint16Array/);
    assert.throws(() => w.beginArray('other', 'uint16', [1]), /array 'depth' is still open/);
    // The member stays usable after a rejected call: finish it correctly.
    await a.write(new Float32Array(4).fill(1));
    await a.end();
    assert.throws(() => w.beginArray('depth', 'float32', [1]), /duplicate array name 'depth'/);
    await w.close();
    const r = await readNpz(path);
    assert.equal(r.depth.data.length, 24);
    assert.equal(r.depth.data[23], 1);
    assert.equal(r.depth.data[0], 0);
  });

  test('close() with an unfinished array rejects and deletes the partial file', async () => {
    const path = join(dir, 'unfinished.npz');
    const w = await NpzWriter.create(path);
    const a = w.beginArray('depth', 'float32', [10, 10]);
    await a.write(new Float32Array(50));
    await assert.rejects(w.close(), /close\(\) while array 'depth' is open \(50 of 100 elements written\)/);
    assert.equal(existsSync(path), false);
  });

  test('create() fails clearly for an unwritable path', async () => {
    await assert.rejects(NpzWriter.create(join(dir, 'no-such-dir', 'x.npz')), /cannot open .* for writing/);
  });

  test('arrays over the classic ZIP (no ZIP64) size limit are refused up front', async () => {
    const path = join(dir, 'big.npz');
    const w = await NpzWriter.create(path);
    // 1024^3 float32 = 4 GiB > ZIP32_MAX_BYTES: rejected before anything is written.
    assert.throws(() => w.beginArray('depth', 'float32', [1024, 1024, 1024]), /over the 4294967294-byte classic ZIP limit/);
    assert.equal(ZIP32_MAX_BYTES, 0xfffffffe);
    // A uint8 array of the same element count is 1 GiB and is accepted.
    const a = w.beginArray('ok', 'uint8', [1024, 1024, 1024]);
    assert.equal(a.totalElements, 1024 ** 3);
    await w.abort();
    assert.equal(existsSync(path), false);
  });

  test('archive size limit is enforced while streaming compressed data', async () => {
    const path = join(dir, 'limit.npz');
    const w = await NpzWriter.create(path, { compress: true, maxArchiveBytes: 20_000 });
    const a = w.beginArray('noise', 'uint8', [10, 10_000]);
    const chunk = new Uint8Array(10_000);
    let seed = 12345;
    let err: unknown;
    try {
      for (let f = 0; f < 10; f++) {
        for (let i = 0; i < chunk.length; i++) chunk[i] = (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24; // incompressible
        await a.write(chunk);
      }
      await a.end();
    } catch (e) {
      err = e;
    }
    assert.match(String(err), /would exceed 20000 bytes, the classic ZIP limit/);
    await assert.rejects(w.close(), /was not completed \(partial file deleted\)/);
    assert.equal(existsSync(path), false);
  });

  test('stored archives that cannot fit are refused at beginArray', async () => {
    const path = join(dir, 'limit-stored.npz');
    const w = await NpzWriter.create(path, { compress: false, maxArchiveBytes: 10_000 });
    assert.throws(() => w.beginArray('x', 'uint8', [20_000]), /would grow .* over the 10000-byte classic ZIP limit/);
    const a = w.beginArray('y', 'uint8', [100]);
    await a.write(new Uint8Array(100).fill(9));
    await a.end();
    await w.close();
    assert.deepEqual(Array.from((await readNpz(path)).y.data.subarray(0, 3)), [9, 9, 9]);
  });

  test('numpy.load reads the streamed archive with identical values (python cross-check)', async (t) => {
    if (!HAVE_NUMPY) return t.skip(NO_NUMPY);
    const N = 12,
      H = 48,
      W = 64,
      P = H * W;
    for (const compress of [true, false]) {
      const path = join(dir, `numpy-${compress}.npz`);
      const w = await NpzWriter.create(path, { compress });
      const a = w.beginArray('depth', 'float32', [N, H, W]);
      const all = new Float32Array(N * P);
      for (let f = 0; f < N; f++) {
        const fr = all.subarray(f * P, (f + 1) * P);
        for (let i = 0; i < P; i++) fr[i] = frameValue(f, i);
        await a.write(fr);
      }
      await a.end();
      const u16 = Uint16Array.from({ length: 5 * 7 }, (_, i) => (i * 1999) & 0xffff);
      const b = w.beginArray('depth_u16', 'uint16', [5, 7]);
      await b.write(u16);
      await b.end();
      await w.close();

      const code = `
import json, sys, zipfile, hashlib, numpy as np
path = sys.argv[1]
assert zipfile.ZipFile(path).testzip() is None  # CRCs ok
z = np.load(path)
out = {}
for k in z.files:
    a = z[k]
    out[k] = [str(a.dtype), list(a.shape), hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest(), float(a.ravel()[-1])]
print(json.dumps(out))`;
      const res = JSON.parse(runPython(code, [path])) as Record<string, [string, number[], string, number]>;
      assert.deepEqual(Object.keys(res).sort(), ['depth', 'depth_u16']);
      assert.deepEqual(res.depth.slice(0, 3), ['float32', [N, H, W], sha256(all)]);
      assert.equal(res.depth[3], all[all.length - 1]);
      assert.deepEqual(res.depth_u16.slice(0, 3), ['uint16', [5, 7], sha256(u16)]);
    }
  });
  test('readNpz reads archives written by numpy.savez / savez_compressed (python cross-check)', async (t) => {
    if (!HAVE_NUMPY) return t.skip(NO_NUMPY);
    for (const fn of ['savez', 'savez_compressed']) {
      const path = join(dir, `from-numpy-${fn}.npz`);
      runPython(
        `import sys, numpy as np
d = (np.arange(2*3*4, dtype=np.float32).reshape(2, 3, 4) / 7).astype(np.float32)
np.${fn}(sys.argv[1], depth=d, u16=np.array([[0, 1], [256, 65535]], dtype=np.uint16), u8=np.arange(5, dtype=np.uint8), f64=np.array([0.1, -2.5]))`,
        [path],
      );
      const r = await readNpz(path);
      assert.deepEqual(Object.keys(r).sort(), ['depth', 'f64', 'u16', 'u8']);
      assert.equal(r.depth.dtype, 'float32');
      assert.deepEqual(r.depth.shape, [2, 3, 4]);
      assert.deepEqual(
        Array.from(r.depth.data),
        Array.from({ length: 24 }, (_, i) => Math.fround(Math.fround(i) / 7)),
      );
      assert.deepEqual(r.u16.shape, [2, 2]);
      assert.deepEqual(Array.from(r.u16.data), [0, 1, 256, 65535]);
      assert.equal(r.u8.dtype, 'uint8');
      assert.deepEqual(Array.from(r.u8.data), [0, 1, 2, 3, 4]);
      assert.equal(r.f64.dtype, 'float64');
      assert.deepEqual(Array.from(r.f64.data), [0.1, -2.5]);
    }
  });
});

// ---------------------------------------------------------------------------
describe('png', () => {
  test('16-bit gray round trip keeps 0, 1, 256, 65535 at known pixels', () => {
    const w = 5,
      h = 3;
    const img = new Uint16Array(w * h);
    for (let i = 0; i < img.length; i++) img[i] = (i * 4099) & 0xffff;
    const known: Array<[number, number, number]> = [
      [0, 0, 0],
      [1, 0, 1],
      [4, 1, 256],
      [2, 2, 65535],
    ];
    for (const [x, y, v] of known) img[y * w + x] = v;
    const png = encodePng16Gray(img, w, h);
    // IHDR: bit depth 16, color type 0 (grayscale)
    assert.equal(png[24], 16);
    assert.equal(png[25], 0);
    const d = decodePng(png);
    assert.equal(d.width, w);
    assert.equal(d.height, h);
    assert.equal(d.depth, 16);
    assert.equal(d.channels, 1);
    assert.ok(d.data instanceof Uint16Array);
    for (const [x, y, v] of known) assert.equal(d.data[y * w + x], v, `pixel (${x}, ${y})`);
    assert.deepEqual(Array.from(d.data), Array.from(img));
  });

  test('16-bit samples are stored big-endian in IDAT', () => {
    // 1x1 image: every PNG filter leaves the single first-row pixel unchanged.
    const png = encodePng16Gray(Uint16Array.of(0x0102), 1, 1);
    const idatAt = png.indexOf('IDAT');
    const len = png.readUInt32BE(idatAt - 4);
    const raw = inflateSync(png.subarray(idatAt + 4, idatAt + 4 + len));
    assert.equal(raw.length, 3); // filter byte + 2 sample bytes
    assert.deepEqual([raw[1], raw[2]], [0x01, 0x02]);
  });

  test('input views with a byte offset encode their own pixels', () => {
    const backing = Uint16Array.of(9, 9, 9, 1000, 2000, 3000, 4000, 9);
    const view = backing.subarray(3, 7);
    const d = decodePng(encodePng16Gray(view, 2, 2));
    assert.deepEqual(Array.from(d.data), [1000, 2000, 3000, 4000]);
  });

  test('RGB round trip', () => {
    const w = 3,
      h = 2;
    const rgb = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37) & 255);
    const png = encodePngRGB(rgb, w, h);
    assert.equal(png[24], 8);
    assert.equal(png[25], 2);
    const d = decodePng(png);
    assert.equal(d.depth, 8);
    assert.equal(d.channels, 3);
    assert.ok(d.data instanceof Uint8Array);
    assert.deepEqual(Array.from(d.data), Array.from(rgb));
  });

  test('size mismatches are rejected', () => {
    assert.throws(() => encodePng16Gray(new Uint16Array(5), 2, 2), /expected 4 samples for 2x2, got 5/);
    assert.throws(() => encodePngRGB(new Uint8Array(11), 2, 2), /expected 12 samples/);
  });

  test('PIL reads the 16-bit PNG with the same values (python cross-check)', (t) => {
    if (!HAVE_PIL) return t.skip(`${PY} with numpy + PIL not available: PIL cross-check skipped`);
    const w = 4,
      h = 2;
    const img = Uint16Array.of(0, 1, 256, 65535, 300, 40000, 12345, 2);
    const path = join(dir, 'g16.png');
    const png = encodePng16Gray(img, w, h);
    writeFileSync(path, png);
    const out = runPython(
      `import sys, json, numpy as np; from PIL import Image
im = Image.open(sys.argv[1]); a = np.array(im)
print(json.dumps([im.mode, list(a.shape), a.astype(np.int64).ravel().tolist()]))`,
      [path],
    );
    const [mode, shape, values] = JSON.parse(out) as [string, number[], number[]];
    assert.match(mode, /^I/);
    assert.deepEqual(shape, [h, w]);
    assert.deepEqual(values, Array.from(img));
  });
});

// ---------------------------------------------------------------------------
describe('colormap', () => {
  const rgbAt = (lut: Uint8Array, i: number): number[] => Array.from(lut.subarray(i * 3, i * 3 + 3));
  const near = (got: number[], want: number[], tol: number): boolean => got.every((v, k) => Math.abs(v - want[k]) <= tol);

  test('inferno endpoints and midpoint', () => {
    assert.equal(INFERNO_LUT.length, 768);
    assert.ok(near(rgbAt(INFERNO_LUT, 0), [0, 0, 4], 1), `inferno[0] = ${rgbAt(INFERNO_LUT, 0)}`);
    assert.ok(near(rgbAt(INFERNO_LUT, 255), [252, 255, 164], 1), `inferno[255] = ${rgbAt(INFERNO_LUT, 255)}`);
    // exact values under the reference's truncating float->uint8 conversion
    assert.deepEqual(rgbAt(INFERNO_LUT, 0), [0, 0, 3]);
    assert.deepEqual(rgbAt(INFERNO_LUT, 128), [187, 55, 84]);
    assert.deepEqual(rgbAt(INFERNO_LUT, 255), [252, 254, 164]);
    // inferno is monotonically brightening in luminance-ish sum
    let prev = -1;
    for (let i = 0; i < 256; i += 15) {
      const s = rgbAt(INFERNO_LUT, i).reduce((p, v) => p + v, 0);
      assert.ok(s > prev, `inferno not brightening at ${i}`);
      prev = s;
    }
  });

  test('turbo and gray LUTs', () => {
    assert.deepEqual(rgbAt(TURBO_LUT, 0), [48, 18, 59]);
    assert.deepEqual(rgbAt(TURBO_LUT, 128), [164, 252, 59]);
    assert.deepEqual(rgbAt(TURBO_LUT, 255), [122, 4, 2]);
    for (const i of [0, 1, 127, 200, 255]) assert.deepEqual(rgbAt(GRAY_LUT, i), [i, i, i]);
  });

  test('applyColormap index = clamp(int(d*255), 0, 255)', () => {
    // synthetic LUT where entry i is (i, 255 - i, i ^ 0x5a) so the index is recoverable
    const lut = new Uint8Array(768);
    for (let i = 0; i < 256; i++) lut.set([i, 255 - i, i ^ 0x5a], i * 3);
    const d = Float32Array.of(0, 0.5, 1, -1, 2, 0.999, 1 / 255, 0.0039, NaN);
    const want = [0, 127, 255, 0, 255, 254, 1, 0, 0];
    const out = new Uint8Array(d.length * 3);
    assert.equal(applyColormap(d, lut, out), out);
    for (let k = 0; k < d.length; k++) {
      assert.deepEqual(Array.from(out.subarray(k * 3, k * 3 + 3)), [want[k], 255 - want[k], want[k] ^ 0x5a], `d=${d[k]}`);
      assert.equal(colormapIndex(d[k]), want[k], `colormapIndex(${d[k]})`);
    }
    // with inferno
    const o2 = new Uint8Array(6);
    applyColormap(Float32Array.of(0, 1), INFERNO_LUT, o2);
    assert.deepEqual(Array.from(o2), [...rgbAt(INFERNO_LUT, 0), ...rgbAt(INFERNO_LUT, 255)]);
    assert.throws(() => applyColormap(d, lut, new Uint8Array(3)), /output needs 27 bytes/);
    assert.throws(() => applyColormap(d, new Uint8Array(10), out), /LUT must have 768 bytes/);
  });

  test('colormapByName', () => {
    assert.equal(colormapByName('inferno'), INFERNO_LUT);
    assert.equal(colormapByName('Turbo'), TURBO_LUT);
    assert.equal(colormapByName('gray'), GRAY_LUT);
    assert.deepEqual([...COLORMAP_NAMES], ['inferno', 'turbo', 'gray']);
    assert.throws(() => colormapByName('viridis'), /unknown colormap 'viridis' \(valid: inferno, turbo, gray\)/);
    assert.throws(() => colormapByName('toString'), /unknown colormap/);
  });

  test('LUTs equal matplotlib (python cross-check)', (t) => {
    if (!HAVE_MPL) return t.skip(`${PY} with numpy + matplotlib not available: matplotlib cross-check skipped`);
    const out = runPython(`import json, numpy as np, matplotlib
print(json.dumps({n: (np.array(matplotlib.colormaps[n].colors, dtype=np.float64) * 255).astype(np.uint8).ravel().tolist() for n in ['inferno', 'turbo']}))`);
    const ref = JSON.parse(out) as Record<string, number[]>;
    assert.deepEqual(Array.from(INFERNO_LUT), ref.inferno);
    assert.deepEqual(Array.from(TURBO_LUT), ref.turbo);
  });
});
