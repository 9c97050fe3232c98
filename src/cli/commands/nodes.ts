import type { Command } from 'commander';
import { PROJECT_ROOT } from '../../util/project-root.js';
import { builtinRegistry } from '../../nodes/index.js';
import { kindReference, nodeReference } from '../../graph/node-reference.js';
import { UsageError } from '../usage-error.js';
import { didYouMean } from '../../util/did-you-mean.js';

export function registerNodes(program: Command): void {
  program
    .command('nodes')
    .description('List the node kinds a pipeline file may use, with their ports and options (types, defaults, meaning)')
    .argument('[kind]', 'one kind only')
    .action((kind?: string) => {
      const registry = builtinRegistry();
      if (kind === undefined) {
        process.stdout.write(nodeReference(registry.all(), PROJECT_ROOT));
        return;
      }
      const k = registry.get(kind);
      if (!k) throw new UsageError(`unknown node kind "${kind}"${didYouMean(kind, registry.names())} (kinds: ${registry.names().join(', ')})`);
      process.stdout.write(kindReference(k, PROJECT_ROOT));
    });
}
