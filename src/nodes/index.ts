import { NodeRegistry } from '../graph/registry.js';
import { testPatternNode } from './sources/test-pattern.js';
import { websocketNode } from './sinks/websocket.js';
import { strideNode } from './transforms/stride.js';
import { depthNode } from './inference/depth.js';
import type { NodeKind } from '../graph/node-kind.js';

/** Every node kind a pipeline file may use. */
export const BUILTIN_NODES: readonly NodeKind[] = [testPatternNode, strideNode, depthNode, websocketNode] as NodeKind[];

export function builtinRegistry(): NodeRegistry {
  return new NodeRegistry(BUILTIN_NODES);
}
