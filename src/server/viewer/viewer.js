// Protocol: docs/websocket-protocol.md. "DCL1", uint32 LE JSON length, JSON header, payload.
// Modes: 'single' (a pipeline with one stream: RGB, depth and ground truth, as always), 'grid' (a tile
// per stream of a multi-stream pipeline, from GET /streams) and 'one' (one stream of them large).
// The single and 'one' views also have a colour bar, pause, PNG snapshots, WebM recording of the depth view
// and a 3D point cloud (pointcloud.js, three.js; loaded when the 3D view is on).
const $ = (id) => document.getElementById(id);
const luts = await (await fetch('colormaps.json')).json();
for (const name of Object.keys(luts)) $('colormap').add(new Option(name, name));
const state = {
  frames: 0,
  times: [],
  interp: [],
  lut: luts[$('colormap').value],
  lastDepth: null,
  absrel: [],
  connected: false,
  health: null,
  mode: 'single',
  selected: null,
  streams: [],
  tiles: {}, // stream name -> depth frames drawn in its tile
  lastStreams: new Set(), // streams of the frames received since the current subscription took effect
  switching: false,
  stale: 0,
  paused: false,
  lastRgb: null,
  sourceSize: null,
  aspect: null,
  snapshots: 0,
  recording: false,
  recorder: null,
  cloud: null, // the PointCloudView once loaded
};
window.dclViewer = state; // for tests and debugging
const tileEls = new Map(); // stream name -> { el, canvas, decode state }
let ws = null;

$('colormap').onchange = () => {
  state.lut = luts[$('colormap').value];
  drawColorbar();
  if (state.mode === 'grid')
    subscribe(); // the server colour-maps the grid's JPEGs
  else if (state.lastDepth) drawDepth(...state.lastDepth);
};
$('back').onclick = () => back();
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') back();
});

function fit(canvas, w, h) {
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
}
/** Depth is computed at the model's size (multiples of 64): every panel shows the source's aspect ratio. */
function setAspect(w, h) {
  const key = `${w} / ${h}`;
  if (state.aspect === key) return;
  state.aspect = key;
  for (const id of ['rgb', 'depth', 'gt', 'cloud']) $(id).style.aspectRatio = key;
}
/** The colour bar: the colour map in use, disparity 0 (far) on the left to 1 (near) on the right. */
function drawColorbar() {
  const c = $('colorbarCanvas');
  const ctx = c.getContext('2d');
  const img = ctx.createImageData(256, 1);
  const lut = state.lut;
  for (let x = 0; x < 256; x++) img.data.set([lut[3 * x], lut[3 * x + 1], lut[3 * x + 2], 255], 4 * x);
  ctx.putImageData(img, 0, 0);
  $('colorbar').dataset.colormap = $('colormap').value;
}
drawColorbar();
function drawRgb(h, payload) {
  state.lastRgb = { h, payload };
  state.sourceSize = { width: h.width, height: h.height };
  setAspect(h.width, h.height);
  const c = $('rgb');
  fit(c, h.width, h.height);
  const ctx = c.getContext('2d');
  const img = ctx.createImageData(h.width, h.height);
  const n = h.width * h.height;
  const d = img.data;
  for (let i = 0; i < n; i++) {
    d[4 * i] = payload[3 * i];
    d[4 * i + 1] = payload[3 * i + 1];
    d[4 * i + 2] = payload[3 * i + 2];
    d[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}
function drawDepth(h, values, id = 'depth') {
  const c = $(id);
  fit(c, h.width, h.height);
  const ctx = c.getContext('2d');
  const img = ctx.createImageData(h.width, h.height);
  const d = img.data;
  const lut = state.lut;
  for (let i = 0; i < values.length; i++) {
    const k = Math.min(255, Math.max(0, Math.trunc(values[i] * 255))) * 3;
    d[4 * i] = lut[k];
    d[4 * i + 1] = lut[k + 1];
    d[4 * i + 2] = lut[k + 2];
    d[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  if (id === 'depth') {
    state.lastDepth = [h, values];
    if (!state.sourceSize) setAspect(h.width, h.height); // no RGB frames: the depth's own shape
  }
}
/** The 3D view of a depth frame, with the RGB frame of the same seq as colour. */
function drawCloud(h, values) {
  if (!state.cloud || !$('show3d').checked) return;
  const r = state.lastRgb;
  const rgb = r && r.h.seq === h.seq && r.h.stream === h.stream && r.h.format === 'rgb24' ? { data: r.payload, width: r.h.width, height: r.h.height } : null;
  state.cloud.update(values, h.width, h.height, rgb, h.intrinsics ?? null);
  const K = state.cloud.K;
  $('cloudInfo').textContent = `${h.width}×${h.height} points · ${
    state.cloud.intrinsicsFrom === 'source'
      ? `intrinsics from the source (fx ${K.fx.toFixed(1)}, fy ${K.fy.toFixed(1)} px)`
      : 'intrinsics unknown: 60° horizontal field of view assumed'
  }`;
}
function onGroundTruth(h, buf, offset) {
  if (state.paused) return;
  $('gtFigure').hidden = false;
  drawDepth(h, new Float32Array(buf.slice(offset)), 'gt');
  if (typeof h.absrel === 'number') {
    state.absrel.push(h.absrel);
    while (state.absrel.length > 300) state.absrel.shift();
    $('accuracy').hidden = false;
    $('absrel').textContent = h.absrel.toFixed(3);
    $('absrelMean').textContent = (state.absrel.reduce((a, b) => a + b, 0) / state.absrel.length).toFixed(3);
    $('delta1').textContent = h.delta1.toFixed(3);
  }
}

// What each mode asks the server for: the grid takes small colour-mapped JPEGs of every stream
// (no RGB, no ground truth), a single view the raw depth with RGB and ground truth.
function subscription() {
  if (state.mode === 'grid') return { stream: '*', format: 'jpeg', colormap: $('colormap').value, rgb: false, rgbFormat: 'jpeg', gt: false };
  return { stream: state.mode === 'one' ? [state.selected] : '*', format: 'f32', rgb: true, rgbFormat: 'rgb24', gt: true };
}
function subscribe() {
  if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'subscribe', ...subscription() }));
}
/** Whether a frame is one the current subscription asks for (after a change, the old one's last frames still arrive). */
function matches(h) {
  const image = h.format === 'jpeg' || h.format === 'png';
  if (state.mode === 'grid') return image;
  return !image && (state.mode !== 'one' || h.stream === state.selected);
}

function onFrame(buf) {
  const bytes = new Uint8Array(buf);
  const len = new DataView(buf).getUint32(4, true);
  const h = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + len)));
  const payload = bytes.subarray(8 + len);
  // Messages are in order: the first frame of the new subscription means the old one's are through.
  if (state.switching && matches(h)) state.switching = false;
  if (state.switching) {
    state.stale++;
    return;
  }
  state.lastStreams.add(h.stream);
  if (!matches(h)) {
    state.stale++;
    return;
  }
  if (state.mode === 'grid') {
    onTileFrame(h, payload);
    return;
  }
  if (h.kind === 'rgb') {
    if (!state.paused) drawRgb(h, payload);
    if (!state.sawDepth) count(h);
    return;
  }
  if (h.kind === 'gt') {
    onGroundTruth(h, buf, 8 + len);
    return;
  }
  state.sawDepth = true;
  if (!state.paused) {
    const values = h.format === 'f32' ? new Float32Array(buf.slice(8 + len)) : Float32Array.from(new Uint16Array(buf.slice(8 + len)), (v) => v / 65535);
    drawDepth(h, values);
    drawCloud(h, values);
  }
  count(h);
  $('window').textContent = h.window ?? '–';
  state.interp.push([performance.now(), h.interpolated === true]);
  while (state.interp.length > 1 && performance.now() - state.interp[0][0] > 3000) state.interp.shift();
  $('interpolated').textContent = Math.round((100 * state.interp.filter((x) => x[1]).length) / state.interp.length) + ' %';
}

// --- The grid: one tile per stream, kept in step with GET /streams.
function tileFor(name) {
  let t = tileEls.get(name);
  if (t) return t;
  const el = document.createElement('figure');
  el.className = 'tile';
  el.dataset.stream = name;
  el.tabIndex = 0;
  el.setAttribute('role', 'button');
  el.title = `show ${name} large`;
  el.innerHTML =
    '<figcaption><b class="name"></b><span class="state"></span><span class="info" title="frames per second out of the source → out of the stream (into the WebSocket); every k-th frame computed; 95th percentile latency"></span><span class="msg"></span></figcaption><canvas width="160" height="120"></canvas>';
  el.querySelector('.name').textContent = name; // textContent: names come from the pipeline file or the admin API
  el.onclick = () => open(name);
  el.onkeydown = (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      open(name);
    }
  };
  t = { el, canvas: el.querySelector('canvas'), busy: false, next: null, sawDepth: false };
  tileEls.set(name, t);
  state.tiles[name] ??= 0;
  $('grid').append(el);
  return t;
}
function syncTiles() {
  const names = new Set(state.streams.map((s) => s.name));
  for (const [name, t] of tileEls)
    if (!names.has(name)) {
      t.el.remove();
      tileEls.delete(name);
      delete state.tiles[name];
    }
  const num = (v, digits = 1) => (typeof v === 'number' ? v.toFixed(digits) : '–');
  for (const s of state.streams) {
    const el = tileFor(s.name).el;
    const st = el.querySelector('.state');
    st.textContent = s.state;
    st.className = `state ${s.state}`;
    // No-break spaces: a narrow tile wraps between the figures, not inside one.
    el.querySelector('.info').textContent =
      `${num(s.fpsIn)}\u00a0→\u00a0${num(s.fpsOut)}\u00a0fps · stride\u00a0${s.stride ?? '–'} · p95\u00a0${num(s.latencyP95S)}\u00a0s`;
    const msg = el.querySelector('.msg');
    msg.textContent = s.state === 'ok' ? '' : (s.message ?? '');
    msg.title = msg.textContent;
  }
}
// The browser decodes the JPEGs; one decode per tile at a time and only the newest frame waits,
// so a slow tab skips frames instead of queueing decodes.
function onTileFrame(h, payload) {
  const t = tileEls.get(h.stream);
  if (!t) return; // a stream /streams does not list yet (or any more)
  if (h.kind === 'depth') t.sawDepth = true;
  else if (t.sawDepth || h.kind !== 'rgb') return; // video shows only in tiles of streams without depth
  count(h);
  t.next = { h, payload };
  if (!t.busy) drawTile(h.stream, t);
}
async function drawTile(name, t) {
  t.busy = true;
  while (t.next) {
    const { h, payload } = t.next;
    t.next = null;
    try {
      const img = await createImageBitmap(new Blob([payload], { type: h.format === 'png' ? 'image/png' : 'image/jpeg' }));
      fit(t.canvas, img.width, img.height);
      t.canvas.getContext('2d').drawImage(img, 0, 0);
      img.close();
      if (h.kind === 'depth' && tileEls.get(name) === t) state.tiles[name]++;
    } catch {
      /* a frame that does not decode is skipped; the next one replaces it */
    }
  }
  t.busy = false;
}

// --- Switching between the grid and one stream.
/** The overview: a grid when there are several streams, the plain single view otherwise. */
const overview = () => (state.streams.length > 1 ? 'grid' : 'single');
function open(name) {
  setMode('one', name);
}
function back() {
  if (state.mode === 'one') setMode(overview());
}
function setMode(mode, selected = null) {
  if (mode === state.mode && selected === state.selected) return;
  const from = state.selected;
  state.mode = mode;
  state.selected = selected;
  document.body.className = mode;
  $('grid').hidden = mode !== 'grid';
  $('view').hidden = mode === 'grid';
  $('back').hidden = mode !== 'one';
  $('selected').textContent = selected ? `· ${selected}` : '';
  resetView();
  state.switching = true;
  state.lastStreams.clear();
  subscribe();
  const url = new URL(location.href); // so that a reload (or a shared link) opens the same view
  if (selected) url.searchParams.set('stream', selected);
  else url.searchParams.delete('stream');
  history.replaceState(null, '', url);
  if (mode === 'grid') {
    syncTiles();
    if (from) tileEls.get(from)?.el.focus();
  } // keyboard users land where they left
  showState();
}
/** Forget the previous view's frames and figures: they were another stream's. */
function resetView() {
  if (state.recorder) stopRecording(); // a recording is of one stream
  Object.assign(state, { frames: 0, times: [], interp: [], lastDepth: null, absrel: [], sawDepth: false, lastRgb: null, sourceSize: null });
  for (const id of ['rgb', 'depth', 'gt']) $(id).getContext('2d').clearRect(0, 0, $(id).width, $(id).height);
  state.cloud?.clear();
  $('cloudInfo').textContent = '';
  $('gtFigure').hidden = true;
  $('accuracy').hidden = true;
  for (const id of ['sourceFps', 'fps', 'stride', 'interpolated', 'latency', 'sequences', 'window']) $(id).textContent = '–';
  $('frames').textContent = '0';
}

// What the pipeline says about itself (GET /healthz, GET /streams): a down source, the stride, sequence restarts.
function showState() {
  const el = $('status');
  const set = (text, cls) => {
    el.textContent = text;
    el.className = cls;
  };
  if (!state.connected) return set('reconnecting…', 'down');
  if (state.mode === 'grid') return showGridState(set);
  // One stream of several: only its nodes count (NAME/source, NAME/depth).
  const stream = state.mode === 'one' ? state.streams.find((s) => s.name === state.selected) : null;
  const inView = (name) => state.mode !== 'one' || (stream ? stream.nodes.includes(name) : name.startsWith(`${state.selected}/`));
  const nodes = Object.entries(state.health?.nodes ?? {})
    .filter(([name]) => inView(name))
    .map(([, n]) => n);
  const down = nodes.find((n) => n.state === 'down');
  const depth = nodes.find((n) => n.kind === 'depth');
  if (depth?.details) {
    const d = depth.details;
    $('sourceFps').textContent = d.sourceFps ?? '–';
    $('stride').textContent = d.stride ?? '–';
    $('sequences').textContent = d.sequences ?? '–';
  }
  if (state.health?.status === 'failed') return set('pipeline failed', 'down');
  if (stream?.state === 'failed') return set(`stream failed: ${stream.message ?? ''}`, 'down');
  if (down)
    return set(
      down.kind === 'rtsp' || down.kind === 'camera' || down.kind === 'file'
        ? `source reconnecting: ${down.message ?? ''}`
        : `${down.kind} down: ${down.message ?? ''}`,
      'down',
    );
  if (depth?.state === 'degraded') return set(depth.message, 'warn');
  if (depth?.details?.stride > 1) return set(depth.message, 'warn');
  set('live', 'ok');
}
function showGridState(set) {
  if (state.health?.status === 'failed') return set('pipeline failed', 'down');
  const n = state.streams.length;
  const counts = {};
  for (const s of state.streams) counts[s.state] = (counts[s.state] ?? 0) + 1;
  if (counts.ok === n) return set(`${n} streams live`, 'ok');
  set(
    `${n} streams: ${Object.entries(counts)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ')}`,
    counts.ok || counts.degraded ? 'warn' : 'down',
  );
}
async function getJson(path) {
  try {
    return await (await fetch(path, { cache: 'no-store' })).json();
  } catch {
    return null;
  }
}
async function poll() {
  const [health, streams] = await Promise.all([getJson('healthz'), getJson('streams')]);
  state.health = health;
  // Streams come and go at run time; without an answer, keep the last list.
  if (Array.isArray(streams?.streams)) state.streams = streams.streams;
  // A pack with random weights draws noise: say so above everything (the depth node reports it).
  const warning = Object.values(health?.nodes ?? {})
    .map((n) => n.details?.packWarning)
    .find((w) => w);
  $('banner').hidden = !warning;
  if (warning) $('banner').textContent = `Model ${warning}.`;
  // Follow them once started (before that, the start below picks the first view).
  if (ws) {
    if (state.mode === 'one' && !state.streams.some((s) => s.name === state.selected))
      setMode(overview()); // it was removed
    else if (state.mode !== 'one' && state.mode !== overview()) setMode(overview());
    if (state.mode === 'grid') syncTiles();
  }
  showState();
}
function count(h) {
  state.frames++;
  const now = performance.now();
  state.times.push(now);
  // Depth arrives in bursts (decode chunks of 8): average over the last 3 s, not the last few frames.
  while (state.times.length > 2 && now - state.times[0] > 3000) state.times.shift();
  if (state.times.length > 1) $('fps').textContent = (((state.times.length - 1) * 1000) / (now - state.times[0])).toFixed(1);
  $('latency').textContent = Math.round(h.latencyMs);
  $('frames').textContent = state.frames;
}
function connect() {
  const url = new URL('ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const sub = subscription();
  url.searchParams.set('format', sub.format);
  url.searchParams.set('rgb', sub.rgb ? '1' : '0');
  url.searchParams.set('gt', sub.gt ? '1' : '0');
  url.searchParams.set('rgbFormat', sub.rgbFormat);
  if (sub.colormap) url.searchParams.set('colormap', sub.colormap);
  if (state.mode !== 'single') url.searchParams.set('stream', [sub.stream].flat().join(','));
  const token = new URLSearchParams(location.search).get('token');
  if (token) url.searchParams.set('token', token);
  const asked = JSON.stringify(sub);
  const socket = (ws = new WebSocket(url));
  socket.binaryType = 'arraybuffer';
  // The view may have changed while connecting: then ask for the current one.
  socket.onopen = () => {
    state.connected = true;
    if (JSON.stringify(subscription()) !== asked) subscribe();
    showState();
  };
  socket.onmessage = (e) => {
    if (typeof e.data === 'string') {
      const m = JSON.parse(e.data);
      if (m.type === 'stats') $('dropped').textContent = m.dropped;
      return;
    }
    onFrame(e.data);
  };
  socket.onclose = () => {
    state.connected = false;
    showState();
    setTimeout(connect, 1000);
  };
}

// --- Tools of the single view: pause, snapshot, recording, the 3D view.
function setPaused(p) {
  state.paused = p;
  $('pause').setAttribute('aria-pressed', String(p));
  $('pause').textContent = p ? 'Resume' : 'Pause';
}
$('pause').onclick = () => setPaused(!state.paused);
document.addEventListener('keydown', (e) => {
  const t = e.target;
  if (e.key !== ' ' || state.mode === 'grid' || t instanceof HTMLInputElement || t instanceof HTMLButtonElement || t instanceof HTMLSelectElement) return;
  e.preventDefault();
  setPaused(!state.paused);
});
function download(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}
function fileStem() {
  const h = state.lastDepth?.[0] ?? state.lastRgb?.h;
  const safe = (s) =>
    String(s)
      .replace(/[^A-Za-z0-9._-]+/g, '_')
      .slice(0, 60);
  return `depthcrafter-${safe(h?.stream ?? 'stream')}-${h?.seq ?? 0}`;
}
/** A PNG of the RGB frame and its depth side by side, the depth scaled to the RGB's size (the source's shape). */
$('snapshot').onclick = () => {
  const rgb = state.lastRgb ? $('rgb') : null;
  const depth = $('depth');
  if (!state.lastDepth && !rgb) return;
  const h = rgb ? rgb.height : depth.height;
  const dw = !state.lastDepth ? 0 : rgb ? rgb.width : depth.width;
  const out = document.createElement('canvas');
  out.width = (rgb ? rgb.width : 0) + dw;
  out.height = h;
  const ctx = out.getContext('2d');
  if (rgb) ctx.drawImage(rgb, 0, 0);
  if (dw) ctx.drawImage(depth, rgb ? rgb.width : 0, 0, dw, h);
  const name = `${fileStem()}.png`;
  out.toBlob((blob) => {
    if (blob) {
      download(blob, name);
      state.snapshots++;
    }
  }, 'image/png');
};
/** Records the depth canvas (captureStream: a video frame whenever it is drawn) as WebM; downloads on stop. */
function startRecording() {
  const type = ['video/webm;codecs=vp9', 'video/webm;codecs=vp8', 'video/webm'].find((t) => MediaRecorder.isTypeSupported(t));
  if (!type) {
    $('record').disabled = true;
    $('record').title = 'this browser cannot record WebM';
    return;
  }
  const rec = new MediaRecorder($('depth').captureStream(30), { mimeType: type, videoBitsPerSecond: 4_000_000 });
  const chunks = [];
  const started = performance.now();
  const name = `${fileStem()}.webm`;
  const timer = setInterval(() => {
    const s = Math.round((performance.now() - started) / 1000);
    $('record').textContent = `Stop ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  }, 500);
  rec.ondataavailable = (e) => {
    if (e.data.size > 0) chunks.push(e.data);
  };
  rec.onstop = () => {
    clearInterval(timer);
    download(new Blob(chunks, { type: 'video/webm' }), name);
  };
  rec.start(1000);
  state.recorder = rec;
  state.recording = true;
  $('record').setAttribute('aria-pressed', 'true');
  $('record').textContent = 'Stop 0:00';
}
function stopRecording() {
  state.recorder?.stop();
  state.recorder = null;
  state.recording = false;
  $('record').setAttribute('aria-pressed', 'false');
  $('record').textContent = 'Record';
}
$('record').onclick = () => (state.recorder ? stopRecording() : startRecording());
if (typeof MediaRecorder === 'undefined' || !HTMLCanvasElement.prototype.captureStream) $('record').disabled = true;

// The 3D view: three.js is loaded the first time it is shown (about 2 MB, from this server).
let cloudLoading = null;
function show3d(on) {
  $('cloudFigure').hidden = !on;
  try {
    localStorage.setItem('dcl.show3d', on ? '1' : '0');
  } catch {
    /* storage off */
  }
  if (!on || state.cloud || cloudLoading) return;
  cloudLoading = import('./pointcloud.js')
    .then(({ PointCloudView }) => {
      const view = new PointCloudView($('cloud'));
      view.setRange(Number($('cloudRange').value));
      state.cloud = view;
      if (state.lastDepth) drawCloud(...state.lastDepth);
    })
    .catch((e) => {
      $('cloudError').hidden = false;
      $('cloudError').textContent = `3D view unavailable: ${e.message}`;
    });
}
$('show3d').checked = (() => {
  try {
    return localStorage.getItem('dcl.show3d') !== '0';
  } catch {
    return true;
  }
})();
$('show3d').onchange = () => {
  show3d($('show3d').checked);
  if ($('show3d').checked && state.lastDepth) drawCloud(...state.lastDepth);
};
$('cloudRange').oninput = () => {
  $('cloudRangeValue').textContent = $('cloudRange').value;
  state.cloud?.setRange(Number($('cloudRange').value));
  state.cloud?.resetView();
};
$('cloudReset').onclick = () => state.cloud?.resetView();
show3d($('show3d').checked);

// Start: which view depends on the streams (and ?stream=NAME opens one large), so ask first.
await poll();
const wanted = new URLSearchParams(location.search).get('stream');
if (wanted && (state.streams.length === 0 || state.streams.some((s) => s.name === wanted))) setMode('one', wanted);
else setMode(overview());
connect();
setInterval(poll, 1000);
