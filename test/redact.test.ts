import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clipForLog, redactDeep, redactUrls } from '../src/util/redact.js';

// Credential redaction must be right and cheap: it runs on every log line, including lines that
// carry text a remote client chose (an Origin header, a subscribe message).

/** The earlier regular expression: the behaviour to keep (for schemes up to 32 characters). */
const REFERENCE = /([a-z][a-z0-9+.-]*:\/\/)([^/@\s:]+)(?::[^/@\s]*)?@/gi;
const reference = (t: string) => t.replace(REFERENCE, '$1***@');

test('redactUrls removes user-info from URLs and nothing else', () => {
  const cases: Array<[string, string]> = [
    ['rtsp://alice:s3cret@cam.local:554/live', 'rtsp://***@cam.local:554/live'],
    ['connect to RTSP://U:P@H now', 'connect to RTSP://***@H now'],
    ['a rtsp://u:p:q@h and http://v@w/x', 'a rtsp://***@h and http://***@w/x'],
    ['rtsp://:pass@host', 'rtsp://:pass@host'],
    ['rtsp://u:p/x@h', 'rtsp://u:p/x@h'],
    ['rtsp://us er@h', 'rtsp://us er@h'],
    ['1abc://u:p@h', '1abc://***@h'],
    ['x-y+z.1://u:p@h', 'x-y+z.1://***@h'],
    ['a://b://u:p@h', 'a://b://***@h'],
    ['no scheme user:pass@host', 'no scheme user:pass@host'],
    ['', ''],
  ];
  for (const [input, want] of cases) {
    assert.equal(redactUrls(input), want, input);
    assert.equal(reference(input), want, `reference: ${input}`);
  }
});

test('redactUrls agrees with the reference expression on 5,000 random strings', () => {
  let state = 12345;
  const rand = () => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
  const alphabet = 'ab1:/@ .+-\tZ';
  for (let n = 0; n < 5000; n++) {
    let s = '';
    const len = Math.floor(rand() * 30);
    for (let i = 0; i < len; i++) s += rand() < 0.15 ? '://' : alphabet[Math.floor(rand() * alphabet.length)];
    assert.equal(redactUrls(s), reference(s), JSON.stringify(s));
  }
});

test('redaction time grows linearly with hostile input (the regular expression took 2.5 s for 40,000 characters)', () => {
  // Guards against a quadratic scan coming back; the bound is ~100x above the linear cost here.
  const hostile = ['a'.repeat(400_000), 'a://'.repeat(100_000), `${'x:'.repeat(200_000)}`, `rtsp://${'u'.repeat(400_000)}`];
  for (const h of hostile) {
    const t0 = performance.now();
    redactUrls(h);
    const ms = performance.now() - t0;
    assert.ok(ms < 1000, `${h.slice(0, 12)}... (${h.length} characters) took ${ms.toFixed(0)} ms`);
  }
});

test('log values are cut to a bounded length after redaction', () => {
  const long = `rtsp://alice:s3cret@h/${'p'.repeat(10_000)}`;
  const out = redactDeep({ origin: long }).origin;
  assert.ok(out.length < 2100, `cut to ${out.length}`);
  assert.ok(out.startsWith('rtsp://***@h/'), 'redacted before cutting (no password prefix survives the cut)');
  assert.match(out, /…\[8\d{3} more characters\]$/);
  assert.equal(clipForLog('short'), 'short');
});
