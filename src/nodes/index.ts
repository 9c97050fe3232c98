import { NodeRegistry } from '../graph/registry.js';
import { testPatternNode } from './sources/test-pattern.js';
import { websocketNode } from './sinks/websocket.js';
import { strideNode } from './transforms/stride.js';
import { depthNode } from './inference/depth.js';
import { cameraNode } from './sources/camera.js';
import { rtspNode } from './sources/rtsp.js';
import { fileNode } from './sources/file.js';
import { framesNode } from './sources/frames.js';
import { pngSequenceNode } from './sinks/png-sequence.js';
import { npzNode } from './sinks/npz.js';
import { mp4Node } from './sinks/mp4.js';
import { syntheticNode } from './sources/synthetic.js';
import { natsPublishNode } from './sinks/nats-publish.js';
import { natsDepthNode } from './sources/nats-depth.js';
import { natsJpegPublishNode } from './sinks/nats-jpeg-publish.js';
import { natsFramesNode } from './sources/nats-frames.js';
import type { NodeKind } from '../graph/node-kind.js';

/** Every node kind a pipeline file may use. */
export const BUILTIN_NODES: readonly NodeKind[] = [
  testPatternNode,
  strideNode,
  depthNode,
  websocketNode,
  cameraNode,
  rtspNode,
  fileNode,
  framesNode,
  pngSequenceNode,
  npzNode,
  mp4Node,
  syntheticNode,
  natsPublishNode,
  natsDepthNode,
  natsJpegPublishNode,
  natsFramesNode,
] as NodeKind[];

export function builtinRegistry(): NodeRegistry {
  return new NodeRegistry(BUILTIN_NODES);
}
