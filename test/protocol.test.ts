import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { DEFAULT_SUBSCRIPTION, MAGIC, decodeFrameMessage, encodeFrameMessage, type FrameHeader } from '../src/protocol/frame-message.js';
import { SubscriptionError, parseSubscription, unknownStreams } from '../src/protocol/subscription.js';
import { COLORMAP_NAMES } from '../src/io/colormap.js';

describe('frame message', () => {
  test('encode/decode round trip keeps the header and the payload bytes', () => {
    const header: FrameHeader = {
      kind: 'depth',
      stream: 'cam-1 «ü»', // non-ASCII: the header length is in bytes, not characters
      seq: 4_000_000_123,
      ptsMs: 1234.5,
      width: 7,
      height: 3,
      format: 'u16',
      latencyMs: 12.3,
      window: 9,
    };
    const payload = new Uint8Array(7 * 3 * 2);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 37 + 11) & 0xff;
    const msg = encodeFrameMessage(header, payload);

    assert.equal(msg.subarray(0, 4).toString('ascii'), MAGIC);
    const jsonLen = msg.readUInt32LE(4);
    assert.equal(jsonLen, Buffer.byteLength(JSON.stringify(header), 'utf8'));
    assert.equal(msg.byteLength, 8 + jsonLen + payload.byteLength);

    const back = decodeFrameMessage(msg);
    assert.deepEqual(back.header, header);
    assert.deepEqual([...back.payload], [...payload]);

    // Also from a plain Uint8Array view at a non-zero offset (as a browser or a sliced buffer gives it).
    const padded = new Uint8Array(msg.byteLength + 5);
    padded.set(msg, 5);
    const back2 = decodeFrameMessage(padded.subarray(5));
    assert.deepEqual(back2.header, header);
    assert.deepEqual([...back2.payload], [...payload]);
  });

  test('an empty payload round-trips', () => {
    const header: FrameHeader = { kind: 'rgb', stream: 's', seq: 0, ptsMs: 0, width: 0, height: 0, format: 'rgb24', latencyMs: 0 };
    const back = decodeFrameMessage(encodeFrameMessage(header, new Uint8Array(0)));
    assert.deepEqual(back.header, header);
    assert.equal(back.payload.byteLength, 0);
  });

  test('decode rejects short, foreign and truncated messages', () => {
    assert.throws(() => decodeFrameMessage(new Uint8Array(5)), /too short/);
    const good = encodeFrameMessage({ kind: 'rgb', stream: 's', seq: 1, ptsMs: 0, width: 1, height: 1, format: 'rgb24', latencyMs: 0 }, new Uint8Array(3));
    const foreign = Buffer.from(good);
    foreign.write('XCL1', 0, 'ascii');
    assert.throws(() => decodeFrameMessage(foreign), /bad magic/);
    const truncated = good.subarray(0, 8 + good.readUInt32LE(4) - 1);
    assert.throws(() => decodeFrameMessage(truncated), /out of range/);
    const huge = Buffer.from(good);
    huge.writeUInt32LE(0xfffffff0, 4);
    assert.throws(() => decodeFrameMessage(huge), /out of range/);
  });
});

describe('parseSubscription', () => {
  test('defaults when nothing is asked for', () => {
    assert.deepEqual(parseSubscription(new URLSearchParams('')), DEFAULT_SUBSCRIPTION);
    assert.deepEqual(parseSubscription({ type: 'subscribe' }), DEFAULT_SUBSCRIPTION);
  });

  test('valid query-string values', () => {
    const cm = COLORMAP_NAMES[COLORMAP_NAMES.length - 1];
    const s = parseSubscription(new URLSearchParams(`format=f32&rgb=1&rgbFormat=jpeg&colormap=${cm}`));
    assert.deepEqual(s, { depthFormat: 'f32', rgb: true, rgbFormat: 'jpeg', colormap: cm, gt: false, streams: null });
    for (const f of ['u16', 'f32', 'jpeg', 'png'] as const) {
      assert.equal(parseSubscription(new URLSearchParams(`format=${f}`)).depthFormat, f);
    }
    assert.equal(parseSubscription(new URLSearchParams('rgb=true')).rgb, true);
    assert.equal(parseSubscription(new URLSearchParams('rgb=0'), { ...DEFAULT_SUBSCRIPTION, rgb: true }).rgb, false);
    assert.equal(parseSubscription(new URLSearchParams('rgb=false'), { ...DEFAULT_SUBSCRIPTION, rgb: true }).rgb, false);
  });

  test('streams: repeated or comma-separated names, * for all, from a query or a message', () => {
    assert.deepEqual(parseSubscription(new URLSearchParams('stream=a&stream=b')).streams, ['a', 'b']);
    assert.deepEqual(parseSubscription(new URLSearchParams('stream=a,b,a')).streams, ['a', 'b']);
    assert.equal(parseSubscription(new URLSearchParams('stream=*')).streams, null);
    assert.equal(parseSubscription(new URLSearchParams('')).streams, null);
    const one = parseSubscription({ type: 'subscribe', stream: ['cam2'] });
    assert.deepEqual(one.streams, ['cam2']);
    assert.equal(parseSubscription({ type: 'subscribe', stream: 'all' }, one).streams, null);
    assert.deepEqual(parseSubscription({ type: 'subscribe', format: 'f32' }, one).streams, ['cam2'], 'a message without stream keeps the choice');
    assert.throws(() => parseSubscription(new URLSearchParams('stream=')), SubscriptionError);
    assert.throws(() => parseSubscription({ type: 'subscribe', stream: 7 }), /stream must be a stream name or a list/);
    assert.throws(() => parseSubscription({ type: 'subscribe', stream: ['a', 3] }), SubscriptionError);
    assert.deepEqual(unknownStreams(parseSubscription(new URLSearchParams('stream=a,x')), ['a', 'b']), ['x']);
  });

  test('valid JSON control messages update the base subscription', () => {
    const base = parseSubscription(new URLSearchParams('format=png&colormap=' + COLORMAP_NAMES[0]));
    const s = parseSubscription({ type: 'subscribe', rgb: true }, base);
    assert.deepEqual(s, { ...base, rgb: true });
    const s2 = parseSubscription({ type: 'subscribe', format: 'u16', rgb: false, rgbFormat: 'rgb24' }, s);
    assert.deepEqual(s2, { ...base, depthFormat: 'u16', rgb: false, rgbFormat: 'rgb24' });
    // The base is not mutated.
    assert.equal(base.rgb, false);
    assert.equal(base.depthFormat, 'png');
  });

  const invalid: Array<[string, URLSearchParams | Record<string, unknown>, RegExp]> = [
    ['unknown depth format (query)', new URLSearchParams('format=bmp'), /format must be one of u16, f32, jpeg, png/],
    ['unknown depth format (json)', { type: 'subscribe', format: 16 }, /format must be one of/],
    ['rgb not a boolean (query)', new URLSearchParams('rgb=yes'), /rgb must be true or false/],
    ['rgb not a boolean (json string)', { rgb: 'yes' }, /rgb must be true or false/],
    ['rgb as a number (json)', { rgb: 1 }, /rgb must be true or false/],
    ['unknown rgb format', new URLSearchParams('rgbFormat=png'), /rgbFormat must be one of rgb24, jpeg/],
    ['unknown colormap', new URLSearchParams('colormap=rainbow-unicorn'), /colormap must be one of/],
    ['colormap not a string (json)', { colormap: 3 }, /colormap must be one of/],
    ['unknown field (json)', { type: 'subscribe', fromat: 'f32' }, /unknown field "fromat"/],
  ];
  for (const [name, src, re] of invalid) {
    test(`invalid: ${name}`, () => {
      assert.throws(
        () => parseSubscription(src),
        (e: unknown) => e instanceof SubscriptionError && re.test(e.message),
      );
    });
  }

  test('unknown query parameters are ignored (tokens and cache busters travel in the URL)', () => {
    assert.deepEqual(parseSubscription(new URLSearchParams('token=abc&_=123')), DEFAULT_SUBSCRIPTION);
  });
});

test('the gt flag: query string and subscribe message', () => {
  assert.equal(parseSubscription(new URLSearchParams('gt=1')).gt, true);
  assert.equal(parseSubscription(new URLSearchParams('')).gt, false);
  assert.equal(parseSubscription({ type: 'subscribe', gt: true }).gt, true);
  assert.throws(() => parseSubscription(new URLSearchParams('gt=maybe')), SubscriptionError);
});
