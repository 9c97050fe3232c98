import type { Command } from 'commander';
import { loadPipelineFile } from '../../graph/pipeline-file.js';
import { builtinRegistry } from '../../nodes/index.js';
import { collectSet } from '../options.js';
import { checkPipeline } from '../../graph/check.js';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('Check pipeline files without running them (exit 2 on the first mistake)')
    .argument('<pipeline...>', 'pipeline YAML files')
    .option('--set <path=value>', 'override an option, e.g. source.width=640 (repeatable)', collectSet, [])
    .action(async (files: string[], opts: { set: string[] }) => {
      const registry = builtinRegistry();
      for (const file of files) {
        const p = loadPipelineFile(file, registry, { overrides: opts.set });
        // What run would fail on before any frame flows: packs and their limits, devices, folders, shared paths.
        const { warnings } = await checkPipeline(p);
        for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
        process.stdout.write(`${file}: ok (${p.nodes.length} nodes, ${p.edges.length} edges)\n`);
      }
    });
}
