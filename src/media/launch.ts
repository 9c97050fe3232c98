// Helpers to put user-given values into GStreamer launch strings safely.

/** Quote a property value (paths with spaces, URLs with '&'). */
export function quoteProp(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function isUri(input: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(input);
}

/** Decode a file path or URI to RGB frames (lossless: use with a blocking appsink). */
export function decodeToRgbLaunch(input: string): string {
  const src = isUri(input) ? `uridecodebin uri=${quoteProp(input)}` : `filesrc location=${quoteProp(input)} ! decodebin`;
  return `${src} ! videoconvert ! video/x-raw,format=RGB`;
}
