// Where the fleet keeps things on NATS. Camera names are stream names (letters, digits, "_", "-"),
// so they are valid subject tokens and key-value keys as they are.

/** Camera list: key = camera name, value = CameraRecord JSON. No TTL. */
export const CAMERAS_BUCKET = 'dcl-cameras';
/** Leases: key = camera name, value = LeaseRecord JSON; the bucket's TTL is the lease TTL. */
export const LEASES_BUCKET = 'dcl-leases';
/** Live workers: key = worker id, value = WorkerRecord JSON, renewed like a lease. */
export const WORKERS_BUCKET = 'dcl-workers';

/** DCL1 depth messages (f32 payload) of one camera. */
export const depthSubject = (camera: string): string => `dcl.depth.${camera}`;
/** DCL1 RGB messages (rgb24) of one camera, published just before its depth frame. */
export const rgbSubject = (camera: string): string => `dcl.rgb.${camera}`;
/** Per-camera state JSON, about once a second while a worker serves it. */
export const stateSubject = (camera: string): string => `dcl.state.${camera}`;

export const ALL_STATES = 'dcl.state.*';

/** NATS header naming the worker that published a message. */
export const WORKER_HEADER = 'Dcl-Worker';

/** DCL1 RGB messages (kind rgb, format jpeg) of an edge camera, published by `fleet edge` for a worker elsewhere. */
export const framesSubject = (camera: string): string => `dcl.frames.${camera}`;

/** NATS header naming the edge process that published a camera's frames (a new one after a restart). */
export const EDGE_HEADER = 'Dcl-Edge';
