import { it } from 'node:test';
import assert from 'node:assert/strict';
import { errorFromWorker, exitCodeFor, isUserError, OptionError, UserError } from '../src/util/errors.js';
import { NodeFailure } from '../src/graph/runtime.js';
import { PipelineError } from '../src/graph/pipeline-error.js';
import { ModelPackError } from '../src/inference/pack/manifest.js';
import { ProviderOptionsError } from '../src/inference/pack/provider-options.js';
import { validateWindow } from '../src/inference/math/segments.js';
import { workerError } from '../src/inference/engine/engine-host.js';

it('the exit code comes from the type: user errors 2, runtime faults 1', () => {
  assert.equal(exitCodeFor(new PipelineError('p.yaml', 'bad')), 2);
  assert.equal(exitCodeFor(new ModelPackError('no pack', { packDir: '/x' })), 2);
  assert.equal(exitCodeFor(new OptionError('window 111')), 2);
  assert.equal(exitCodeFor(new Error('worker crashed')), 1);
  // A RangeError that is not an option error (a bug, an engine limit) is a runtime fault, whatever its text says.
  assert.equal(exitCodeFor(new RangeError('window must be an integer in 1..110')), 1);
  assert.equal(exitCodeFor('a string'), 1);
});

it('a node failure counts as what it wraps', () => {
  assert.equal(exitCodeFor(new NodeFailure('depth', new ModelPackError('missing', { packDir: '/x' }))), 2);
  assert.equal(exitCodeFor(new NodeFailure('depth', new Error('ORT crashed'))), 1);
});

it('validation of settings throws option errors, which are RangeErrors and user errors', () => {
  assert.throws(
    () => validateWindow(111, 4),
    (e: unknown) => e instanceof OptionError && e instanceof RangeError && isUserError(e),
  );
  const p = new ProviderOptionsError('trtFp16 cannot be passed', 'trtFp16');
  assert.ok(p instanceof RangeError && isUserError(p), 'provider options errors are option errors');
});

it('names survive subclassing, and errors keep their kind across a worker boundary', () => {
  class MissingThing extends UserError {}
  assert.equal(new MissingThing('x').name, 'MissingThing');
  assert.equal(new OptionError('x').name, 'OptionError');
  // The inference worker sends name + message; the host rebuilds them.
  assert.equal(exitCodeFor(workerError('OptionError', 'overlap must be < window')), 2);
  assert.equal(exitCodeFor(workerError('ModelPackError', 'no unet.onnx')), 2);
  assert.equal(exitCodeFor(workerError('Error', 'session failed')), 1);
  assert.equal(errorFromWorker('TypeError', 'boom').name, 'TypeError');
});

it('a plain RangeError from a worker stays a runtime fault', () => {
  assert.equal(exitCodeFor(errorFromWorker('RangeError', 'Invalid array length')), 1);
});
