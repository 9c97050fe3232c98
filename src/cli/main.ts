import { exitCodeFor as userExitCode } from '../util/errors.js';
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { registerRun } from './commands/run.js';
import { registerValidate } from './commands/validate.js';
import { registerInfer } from './commands/infer.js';
import { registerEval } from './commands/eval.js';
import { registerSynth } from './commands/synth.js';
import { registerNodes } from './commands/nodes.js';
import { registerModels } from './commands/models.js';
import { registerFleet } from './commands/fleet.js';
import { InterruptedError } from '../inference/offline/infer.js';
import { signalExitCode } from './exit.js';
import { addBundledVulkanDriver } from '../inference/pack/vulkan-env.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('depthcrafter-live')
    .description('Temporally consistent video depth (DepthCrafter) as a streaming node graph')
    .version(pkg.version, '-v, --version')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  registerRun(program);
  registerValidate(program);
  registerInfer(program);
  registerEval(program);
  registerSynth(program);
  registerNodes(program);
  registerModels(program);
  registerFleet(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // --device webgpu on a machine without a GPU: the lavapipe of scripts/setup-vulkan.sh, set before any WebGPU session.
  addBundledVulkanDriver();
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    process.exitCode = exitCodeFor(e);
    if (e instanceof CommanderError) return; // commander already printed help or the error
    process.stderr.write(`error: ${(e as Error).message}\n`);
  }
}

function exitCodeFor(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
  if (e instanceof InterruptedError) return signalExitCode(e.reason as NodeJS.Signals);
  // By type (src/util/errors.ts): 2 for what the user gave wrong, 1 for a runtime fault.
  return userExitCode(e);
}
