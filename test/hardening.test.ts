import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { cliFixture, serving, startCli, TEST_PATTERN_PIPELINE } from './helpers/cli-process.js';
import { until, within } from './helpers/wait.js';

// Defects reachable by anyone who can open a TCP connection to the port, each tried against the
// real CLI with real sockets.

/** Send an upgrade request, then reset the connection (RST, SO_LINGER 0) or close it, without reading the answer. */
function upgradeAndLeave(port: number, path: string, headers: string, how: 'reset' | 'close'): Promise<void> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${headers}\r\n`,
      );
      setImmediate(() => {
        if (how === 'reset') s.resetAndDestroy();
        else s.destroy();
        resolve();
      });
    });
    s.on('error', () => resolve());
  });
}

describe('refused WebSocket upgrades from clients that go away', () => {
  const fx = cliFixture('dcl-hardening-', TEST_PATTERN_PIPELINE);

  test('a reset or closed connection after a 404/401/403/400 refusal never takes the server down', async () => {
    const run = startCli(['run', fx.file], { DCL_TOKEN: 's3cret' });
    fx.children.push(run);
    const { http, ws, port } = await serving(run);

    // A well-behaved subscriber keeps receiving frames throughout.
    const client = new WebSocket(`${ws}?token=s3cret&rgbFormat=rgb24`);
    let frames = 0;
    client.on('message', (_d, isBinary) => isBinary && frames++);
    await within(5000, 'subscriber open', new Promise((res, rej) => client.once('open', res).once('error', rej)));
    await until(() => frames >= 5, 10_000, 'first frames');

    const refusals: Array<[string, string, string]> = [
      ['404', '/missing', ''],
      ['401', '/ws?token=wrong', ''],
      ['403', '/ws?token=s3cret', 'Origin: http://evil.example\r\n'],
      ['400', '/ws?token=s3cret&format=bogus', ''],
    ];
    for (const [, path, headers] of refusals) {
      for (let i = 0; i < 5; i++) {
        await upgradeAndLeave(port, path, headers, 'reset');
        await upgradeAndLeave(port, path, headers, 'close');
      }
    }
    const before = frames;
    await until(
      () => frames >= before + 10,
      10_000,
      'frames after the refused clients',
      () => run.stderr.slice(-3000),
    );
    const health = await fetch(new URL('/healthz', http));
    assert.equal(health.status, 200);
    assert.equal(run.child.exitCode, null, `the server is still running:\n${run.stderr.slice(-3000)}`);
    assert.doesNotMatch(run.stderr, /ECONNRESET|EPIPE|uncaught/i);
    client.close();

    run.child.kill('SIGTERM');
    const { code } = await within(10_000, 'exit after SIGTERM', run.exit);
    assert.equal(code, 0, run.stderr.slice(-3000));
  });
});

describe('hostile requests against the real CLI', () => {
  const fx = cliFixture('dcl-hardening-', TEST_PATTERN_PIPELINE);

  /** Raw HTTP/1.1 exchange: the status line of the answer. */
  const statusOf = (port: number, request: string) =>
    new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.write(request));
      let got = '';
      s.on('data', (c) => {
        got += c.toString('latin1');
        if (got.includes('\r\n')) {
          resolve(got.split('\r\n')[0]);
          s.destroy();
        }
      });
      s.on('error', reject);
      s.on('close', () => resolve(got.split('\r\n')[0]));
    });
  const upgrade = (port: number, host: string, extra = '') =>
    `GET /ws HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

  test("DNS rebinding: a page on another name gets 403 for the viewer, /metrics and /ws; the server's own names work", async () => {
    const run = startCli(['run', fx.file]);
    fx.children.push(run);
    const { port } = await serving(run);
    const evil = `attacker.example:${port}`;
    assert.match(await statusOf(port, `GET / HTTP/1.1\r\nHost: ${evil}\r\n\r\n`), /^HTTP\/1\.1 403/);
    assert.match(await statusOf(port, `GET /metrics HTTP/1.1\r\nHost: ${evil}\r\n\r\n`), /^HTTP\/1\.1 403/);
    assert.match(await statusOf(port, upgrade(port, evil, `Origin: http://${evil}\r\n`)), /^HTTP\/1\.1 403/);
    assert.match(await statusOf(port, upgrade(port, `127.0.0.1:${port}`, `Origin: http://127.0.0.1:${port}\r\n`)), /^HTTP\/1\.1 101/);
    assert.match(await statusOf(port, upgrade(port, `localhost:${port}`)), /^HTTP\/1\.1 101/);
    assert.match(await statusOf(port, `GET /healthz HTTP/1.1\r\nHost: localhost:${port}\r\n\r\n`), /^HTTP\/1\.1 200/);
    run.child.kill('SIGTERM');
    assert.equal((await within(10_000, 'exit', run.exit)).code, 0);
  });

  test('refused upgrades with 15,000-character Origins do not stall the event loop (a subscriber keeps its frame rate)', async () => {
    const run = startCli(['run', fx.file]);
    fx.children.push(run);
    const { ws, port } = await serving(run);
    const client = new WebSocket(ws);
    let frames = 0;
    client.on('message', (_d, isBinary) => isBinary && frames++);
    await within(5000, 'subscriber open', new Promise((res, rej) => client.once('open', res).once('error', rej)));
    await until(() => frames >= 10, 10_000, 'first frames');
    const rate = async (ms: number, during?: () => Promise<void>) => {
      const f0 = frames;
      const t0 = performance.now();
      let stop = false;
      const attack = during
        ? (async () => {
            while (!stop) await during();
          })()
        : Promise.resolve();
      await new Promise((r) => setTimeout(r, ms));
      stop = true;
      await attack;
      return ((frames - f0) * 1000) / (performance.now() - t0);
    };
    const calm = await rate(2000);
    const longOrigin = `Origin: http://${'a'.repeat(15_000)}.example\r\n`;
    const attacked = await rate(2000, () => statusOf(port, upgrade(port, `127.0.0.1:${port}`, longOrigin)).then(() => undefined));
    console.log(`long-origin refusals: the subscriber got ${attacked.toFixed(1)} fps under attack vs ${calm.toFixed(1)} fps before`);
    assert.ok(attacked >= 0.5 * calm, `subscriber at ${attacked.toFixed(1)} fps under attack vs ${calm.toFixed(1)} fps before`);
    const lines = run.stderr.split('\n').filter((l) => l.includes('origin'));
    assert.ok(lines.length > 0 && lines.every((l) => l.length < 4000), 'refusals are logged with the origin cut short');
    client.close();
    run.child.kill('SIGTERM');
    assert.equal((await within(10_000, 'exit', run.exit)).code, 0);
  });

  test('binding an address other machines can reach is logged as a warning', async () => {
    const run = startCli(['run', fx.file, '--set', 'server.host=0.0.0.0']);
    fx.children.push(run);
    await serving(run);
    const warn = run.lines.find((l) => l.level === 40 && /reachable from other machines/.test(String(l.msg)));
    assert.ok(warn, run.stderr.slice(-2000));
    run.child.kill('SIGTERM');
    assert.equal((await within(10_000, 'exit', run.exit)).code, 0);
  });

  test('an empty DCL_TOKEN is an error, not silently no authentication; whether auth is on is logged', async () => {
    const empty = startCli(['run', fx.file], { DCL_TOKEN: '' });
    fx.children.push(empty);
    const { code } = await within(20_000, 'exit', empty.exit);
    assert.equal(code, 2, empty.stderr);
    assert.match(empty.stderr, /DCL_TOKEN is set but empty/);
    const open = startCli(['run', fx.file], { DCL_TOKEN: undefined });
    fx.children.push(open);
    await serving(open);
    assert.ok(
      open.lines.some((l) => l.auth === 'none' && /no token required/.test(String(l.msg))),
      open.stderr,
    );
    open.child.kill('SIGTERM');
    await within(10_000, 'exit', open.exit);
  });
});

describe('a fatal error with GStreamer threads running', () => {
  test('exits 1 promptly with one log line, instead of hanging on a blocked GStreamer thread', async () => {
    const { spawn } = await import('node:child_process');
    const { ROOT } = await import('./helpers/build-cli.js');
    const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'fixtures', 'fatal-with-gstreamer.ts'), '--handler'], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exit = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    try {
      const code = await within(15_000, 'exit after the uncaught exception', exit);
      assert.equal(code, 1, stderr);
      const fatal = stderr
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message: string } });
      assert.equal(fatal.length, 1, stderr);
      assert.equal(fatal[0].level, 60);
      assert.match(fatal[0].msg, /internal error \(uncaught exception\): exiting/);
      assert.equal(fatal[0].err?.message, 'boom after 10 frames');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
