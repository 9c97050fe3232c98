/**
 * Colormaps as 256-entry RGB uint8 lookup tables (768 bytes, packed RGB) and
 * the reference visualisation rule.
 *
 * `inferno` and `turbo` were generated from matplotlib 3.6.3's ListedColormap
 * data (`matplotlib.colormaps[name].colors`, 256 float RGB triples) converted
 * the way the reference pipeline converts them: `(c * 255).astype(np.uint8)`,
 * i.e. truncation (DepthCrafter's save_video multiplies the colormapped float
 * frames by 255 and casts to uint8). So inferno[0] = (0, 0, 3) and
 * inferno[255] = (252, 254, 164). `gray` is the identity ramp, which makes the
 * gray visualisation equal to the reference `uint8(d * 255)` depth video.
 */

// 256 x RGB, hex, 16 entries per line.
const INFERNO_HEX =
  '00000300000400000601000701010901010b02010e02021003021204031404031605041806041b07051d08061f090621' +
  '0a07230b07260d08280e082a0f092d10092f120a32130a34140b36160b39170b3b190b3e1a0b401c0c431d0c451f0c47' +
  '200c4a220b4c240b4e260b50270b52290b542b0a562d0a582e0a5a300a5c32095d34095f3509603709613909623b0964' +
  '3c09653e0966400966410967430a68450a69460a69480b6a4a0b6a4b0c6b4d0c6b4f0d6c500d6c520e6c530e6d550f6d' +
  '570f6d58106d5a116d5b116e5d126e5f126e60136e62146e63146e65156e66156e68166e6a176e6b176e6d186e6e186e' +
  '70196e72196d731a6d751b6d761b6d781c6d7a1c6d7b1d6c7d1d6c7e1e6c801f6b811f6b83206b85206a86216a88216a' +
  '8922698b22698d23698e24689024689125679325679526669626669827659928649b28649c29639e2963a02a62a12b61' +
  'a32b61a42c60a62c5fa72d5fa92e5eab2e5dac2f5cae305baf315bb1315ab23259b43358b53357b73456b83556ba3655' +
  'bb3754bd3753be3852bf3951c13a50c23b4fc43c4ec53d4dc73e4cc83e4bc93f4acb4049cc4148cd4247cf4446d04544' +
  'd14643d24742d44841d54940d64a3fd74b3ed94d3dda4e3bdb4f3adc5039dd5238de5337df5436e05634e25733e35832' +
  'e45a31e55b30e65c2ee65e2de75f2ce8612be9622aea6428eb6527ec6726ed6825ed6a23ee6c22ef6d21f06f1ff0701e' +
  'f1721df2741cf2751af37719f37918f47a16f57c15f57e14f68012f68111f78310f7850ef8870df8880cf88a0bf98c09' +
  'f98e08f99008fa9107fa9306fa9506fa9706fb9906fb9b06fb9d06fb9e07fba007fba208fba40afba60bfba80dfbaa0e' +
  'fbac10fbae12fbb014fbb116fbb318fbb51afbb71cfbb91efabb21fabd23fabf25fac128f9c32af9c52cf9c72ff8c931' +
  'f8cb34f8cd37f7cf3af7d13cf6d33ff6d542f5d745f5d948f4db4bf4dc4ff3de52f3e056f3e259f2e45df2e660f1e864' +
  'f1e968f1eb6cf1ed70f1ee74f1f079f1f27df2f381f2f485f3f689f4f78df5f891f6fa95f7fb99f9fc9dfafda0fcfea4';

// 256 x RGB, hex, 16 entries per line.
const TURBO_HEX =
  '30123b31154232184a341b51351e5836215f37236538266c3929723a2c793b2f7f3c32853c358b3d37913e3a963f3d9c' +
  '4040a14043a64145ab4148b0424bb5434eba4350be4353c24456c74458cb455bce455ed24560d64563d94666dd4668e0' +
  '466be3466de64670e84673eb4675ed4678f0467af2467df4467ff64682f84584f94587fb4589fc448cfd438efd4291fe' +
  '4193fe4096fe3f98fe3e9bfe3c9dfd3ba0fc39a2fc38a5fb36a8f934aaf833acf631aff52fb1f32db4f12bb6ef2ab9ed' +
  '28bbeb26bde925c0e623c2e421c4e120c6df1ec9dc1dcbda1ccdd71bcfd41ad1d219d3cf18d5cc18d7ca17d9c717dac4' +
  '17dcc217debf18e0bd18e1ba19e3b81ae4b61be5b41de7b11ee8af20e9ac22eba924eca627eda329eea02cef9d2ff09a' +
  '32f19735f39438f4913bf48d3ff58a42f68746f7834af8804df97c51f97955fa7659fb725dfb6f61fc6c65fc6869fd65' +
  '6dfd6271fd5f74fe5c78fe597cfe5680fe5384fe5087fe4d8bfe4b8efe4892fe4695fe4498fe429bfd409efd3ea1fc3d' +
  'a4fc3ba6fb3aa9fb39acfa37aef937b1f836b3f835b6f735b9f534bbf434bef334c0f233c3f133c5ef33c8ee33caed33' +
  'cdeb34cfea34d1e834d4e735d6e535d8e335dae236dde036dfde36e1dc37e3da37e5d838e7d738e8d538ead339ecd139' +
  'edcf39efcd39f0cb3af2c83af3c63af4c43af6c23af7c039f8be39f9bc39f9ba38fab737fbb537fbb336fcb035fcae34' +
  'fdab33fda932fda631fda330fea12ffe9e2efe9b2dfe982cfd952bfd9229fd8f28fd8c27fc8926fc8624fb8323fb8022' +
  'fa7d20fa7a1ff9771ef8741cf7711bf76e1af66b18f56817f46516f36315f26014f15d13ef5a11ee5810ed550fec520e' +
  'ea500de94d0de84b0ce6490be5460ae3440ae24209e04008de3e08dd3c07db3a07d93806d73606d63405d43205d23005' +
  'd02f04ce2d04cb2b03c92903c72803c52602c32402c02302be2102bb1f01b91e01b61c01b41b01b11901ae1801ac1601' +
  'a91501a61401a31201a011019d10019a0e01970d01940c01910b018e0a018b09018708018407018106027d05027a0402';

function lutFromHex(hex: string): Uint8Array {
  if (hex.length !== 256 * 3 * 2) throw new Error(`colormap: bad LUT data length ${hex.length}`);
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

function grayLut(): Uint8Array {
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) lut.fill(i, i * 3, i * 3 + 3);
  return lut;
}

/** matplotlib `inferno`, 256 x RGB uint8 (packed). The reference visualisation colormap. */
export const INFERNO_LUT: Uint8Array = lutFromHex(INFERNO_HEX);
/** matplotlib `turbo`, 256 x RGB uint8 (packed). */
export const TURBO_LUT: Uint8Array = lutFromHex(TURBO_HEX);
/** Gray ramp: entry i is (i, i, i). */
export const GRAY_LUT: Uint8Array = grayLut();

const LUTS = { inferno: INFERNO_LUT, turbo: TURBO_LUT, gray: GRAY_LUT } as const;
export type ColormapName = keyof typeof LUTS;
export const COLORMAP_NAMES: readonly ColormapName[] = Object.keys(LUTS) as ColormapName[];

/** Returns the LUT for a colormap name (case-insensitive); throws listing valid names otherwise. */
export function colormapByName(name: string): Uint8Array {
  const key = String(name).toLowerCase();
  if (Object.prototype.hasOwnProperty.call(LUTS, key)) return LUTS[key as ColormapName];
  throw new Error(`unknown colormap '${name}' (valid: ${COLORMAP_NAMES.join(', ')})`);
}

/** LUT index for a value in [0, 1]: clamp(int(d * 255), 0, 255), int truncating toward zero; NaN maps to 0. */
export function colormapIndex(d: number): number {
  const i = Math.trunc(d * 255);
  return i > 255 ? 255 : i >= 0 ? i : 0; // NaN fails both comparisons -> 0
}

/**
 * Colormaps `depth01` (values nominally in [0, 1]) into `out` as packed RGB
 * (3 bytes per value). Index rule as in the reference: clamp(int(d * 255), 0, 255).
 */
export function applyColormap(depth01: Float32Array, lut: Uint8Array, out: Uint8Array): Uint8Array {
  if (lut.length !== 256 * 3) throw new Error(`applyColormap: LUT must have 768 bytes (256 x RGB), got ${lut.length}`);
  if (out.length < depth01.length * 3) {
    throw new Error(`applyColormap: output needs ${depth01.length * 3} bytes (RGB per value), got ${out.length}`);
  }
  for (let i = 0, o = 0; i < depth01.length; i++, o += 3) {
    const t = Math.trunc(depth01[i] * 255);
    const k = (t > 255 ? 255 : t >= 0 ? t : 0) * 3;
    out[o] = lut[k];
    out[o + 1] = lut[k + 1];
    out[o + 2] = lut[k + 2];
  }
  return out;
}
