import { redactUrls } from '../util/redact.js';
import { z } from 'zod';
import { parse as parseYamlScalar } from 'yaml';
import { STREAM_NAME, type StreamEntry } from '../graph/streams.js';
import { FleetConfigError } from './nats.js';

// A camera in the fleet's list: a name, a URL saying where its frames come from, and option
// overrides. The URL picks the source node a worker runs for it:
//   rtsp://... rtsps://...        rtsp      (IP cameras; credentials stay in the URL, never logged)
//   synthetic:?seed=3&fps=8       synthetic (the procedural scene, for demos and tests)
//   test:?pattern=ball            test-pattern
//   v4l2:///dev/video0            camera    (a camera on the worker's own machine)
//   file:///path or /path         file
//   edge:?fps=8                   nats-frames (JPEG frames that `fleet edge NAME` publishes on dcl.frames.NAME)
// `--set KEY=VALUE` sets a source option (KEY) or an option of the worker's per-stream node
// NODE (NODE.KEY, e.g. depth.maxRes=256).

export const cameraRecordSchema = z
  .object({
    name: z.string().regex(STREAM_NAME, 'camera names are 1-64 letters, digits, "_" and "-"'),
    url: z.string().min(1),
    source: z.record(z.string(), z.unknown()).default({}),
    overrides: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  })
  .strict();

export type CameraRecord = z.infer<typeof cameraRecordSchema>;

/** The record for `fleet camera add NAME URL --set ...`. */
export function cameraRecord(name: string, url: string, sets: readonly string[] = []): CameraRecord {
  const rec: CameraRecord = { name, url, source: {}, overrides: {} };
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new FleetConfigError(`--set needs KEY=VALUE, got ${JSON.stringify(s)}`);
    const key = s.slice(0, eq);
    const value = parseYamlScalar(s.slice(eq + 1)) as unknown;
    const dot = key.indexOf('.');
    if (dot < 0) rec.source[key] = value;
    else (rec.overrides[key.slice(0, dot)] ??= {})[key.slice(dot + 1)] = value;
  }
  const parsed = cameraRecordSchema.safeParse(rec);
  if (!parsed.success) throw new FleetConfigError(`camera ${JSON.stringify(name)}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  streamEntryFor(parsed.data); // the URL must be understood now, not on a worker
  return parsed.data;
}

/** The stream a worker runs for a camera. */
export function streamEntryFor(cam: CameraRecord): StreamEntry {
  const { kind, options } = sourceForUrl(cam.url);
  return { name: cam.name, source: { kind, options: { ...options, ...cam.source } }, overrides: cam.overrides };
}

function sourceForUrl(url: string): { kind: string; options: Record<string, unknown> } {
  if (/^rtsps?:\/\//i.test(url)) return { kind: 'rtsp', options: { url, reconnect: { initialDelayMs: 250, maxDelayMs: 2000, maxAttempts: -1 } } };
  if (url.startsWith('/') && !url.startsWith('/dev/')) return { kind: 'file', options: { path: url, loop: true } };
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new FleetConfigError(`camera URL not understood: ${JSON.stringify(redactUrls(url))} (rtsp://, synthetic:, test:, v4l2://, file://, edge:)`);
  }
  const query = Object.fromEntries([...u.searchParams].map(([k, v]) => [k, parseYamlScalar(v) as unknown]));
  switch (u.protocol) {
    case 'synthetic:':
      return { kind: 'synthetic', options: query };
    case 'test:':
      return { kind: 'test-pattern', options: query };
    case 'v4l2:':
      return { kind: 'camera', options: { device: u.pathname || '/dev/video0', ...query } };
    case 'file:':
      return { kind: 'file', options: { path: decodeURIComponent(u.pathname), loop: true, ...query } };
    case 'edge:':
      // A camera attached to an edge box (`fleet edge NAME`): its frames come over the bus as JPEG.
      return { kind: 'nats-frames', options: query };
    default:
      throw new FleetConfigError(`camera URL scheme ${u.protocol}// not supported (rtsp://, synthetic:, test:, v4l2://, file://, edge:)`);
  }
}
