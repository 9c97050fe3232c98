// The node reference is generated from the kinds' contracts: docs/nodes.md must be exactly what
// `depthcrafter-live nodes` prints (regenerate it after changing a kind), every option says what
// it does, and the CLI answers for one kind or suggests the closest name.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { z } from 'zod';
import { BUILTIN_NODES } from '../src/nodes/index.js';
import { nodeReference } from '../src/graph/node-reference.js';
import { closest, editDistance } from '../src/util/did-you-mean.js';
import { CLI, ROOT, ensureBuilt } from './helpers/build-cli.js';

const HEADER =
  '# Node kinds\n\nGenerated from the node kinds themselves by `depthcrafter-live nodes` (do not edit: `node bin/depthcrafter-live.js nodes > docs/nodes.md` after a change; `test/node-reference.test.ts` fails when this file is stale). Paths are relative to the project folder.\n\n';

test('docs/nodes.md is the generated reference (regenerate: node bin/depthcrafter-live.js nodes > docs/nodes.md, with the header)', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'nodes.md'), 'utf8');
  assert.equal(doc, HEADER + nodeReference(BUILTIN_NODES, ROOT), 'docs/nodes.md is stale');
  assert.ok(!doc.includes(ROOT), 'no machine path in the reference');
});

test('every option of every kind has a description', () => {
  const missing: string[] = [];
  const walk = (kind: string, s: { properties?: Record<string, { description?: string; properties?: unknown }> }, prefix: string) => {
    for (const [name, o] of Object.entries(s.properties ?? {})) {
      if (!o.description) missing.push(`${kind}.${prefix}${name}`);
      walk(kind, o as never, `${prefix}${name}.`);
    }
  };
  for (const k of BUILTIN_NODES) walk(k.kind, z.toJSONSchema(k.options, { io: 'input', unrepresentable: 'any' }) as never, '');
  assert.deepEqual(missing, []);
});

test('depthcrafter-live nodes KIND prints one kind; a typo gets the closest name and exit 2', () => {
  ensureBuilt();
  const one = spawnSync(process.execPath, [CLI, 'nodes', 'depth'], { encoding: 'utf8' });
  assert.equal(one.status, 0, one.stderr);
  assert.match(one.stdout, /^## `depth` \(transform\)/);
  assert.match(one.stdout, /\| `engine` \| `shared`, `own` \| `"shared"` \| /);
  assert.doesNotMatch(one.stdout, /## `rtsp`/);
  const typo = spawnSync(process.execPath, [CLI, 'nodes', 'synthtic'], { encoding: 'utf8' });
  assert.equal(typo.status, 2);
  assert.match(typo.stderr, /unknown node kind "synthtic": did you mean "synthetic"\?/);
});

test('did you mean: edit distance with swaps, and only close names are suggested', () => {
  assert.equal(editDistance('window', 'window'), 0);
  assert.equal(editDistance('widnow', 'window'), 1, 'a swap of neighbours is one edit');
  assert.equal(editDistance('windw', 'window'), 1);
  assert.equal(closest('overlpa', ['window', 'overlap', 'steps']), 'overlap');
  assert.equal(closest('xyz', ['window', 'overlap']), undefined);
  assert.equal(closest('Fps', ['fps', 'width']), 'fps', 'case does not count');
});
