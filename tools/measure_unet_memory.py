#!/usr/bin/env python3
"""Peak memory and time of one UNet call of a model pack with ONNX Runtime on the CPU, each measurement in a fresh
child process (its peak RSS from wait4, so nothing of an earlier run or of this driver is counted).

    python tools/measure_unet_memory.py --pack /tmp/realsize-mha --pack /tmp/realsize-unfused --frames 8 --size 320x576
    python tools/measure_unet_memory.py --pack DIR --frames 16 --size 256x256 --repeat 2 --json

For each pack and repeat it reports: RSS after the session is created (weights, plus the float32 copies the CPU
provider makes of float16 weights it has no kernels for), peak RSS over the session creation and the calls, the
difference (what the call itself needs: activations and attention scores), and the seconds of each call. Inputs are
random, at the pack's dtype: sample [1,T,2C,h,w], timestep, encoder_hidden_states [1,T,D], added_time_ids.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

GiB = 1024 ** 3


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(a) -> int:
    import numpy as np
    import onnxruntime as ort

    with open(os.path.join(a.pack, "manifest.json")) as fh:
        m = json.load(fh)
    dt = np.float16 if m["dtype"] == "float16" else np.float32
    H, W = (int(v) for v in a.size.lower().split("x"))
    down = m.get("spatialDownsample", 8)
    C = m.get("latentChannels", 4)
    h, w = H // down, W // down
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if a.threads:
        so.intra_op_num_threads = a.threads
    t0 = time.time()
    sess = ort.InferenceSession(os.path.join(a.pack, m["files"]["unet"]), so, providers=["CPUExecutionProvider"])
    load_s = time.time() - t0
    after_load = rss_bytes()
    rng = np.random.default_rng(0)
    feeds = {"sample": rng.standard_normal((1, a.frames, 2 * C, h, w)).astype(dt),
             "timestep": np.array([0.25 * np.log(15.58997)], dt),
             "encoder_hidden_states": rng.standard_normal((1, a.frames, m["embeddingDim"])).astype(dt),
             "added_time_ids": np.array([m.get("addedTimeIds", [7, 127, 0.02])], dt)}
    calls = []
    for _ in range(a.calls):
        t1 = time.time()
        out = sess.run(None, feeds)[0]
        calls.append(round(time.time() - t1, 2))
    finite = bool(np.isfinite(out.astype(np.float32)).all())
    print(json.dumps({"loadSeconds": round(load_s, 1), "rssAfterLoad": after_load, "callSeconds": calls,
                      "outputShape": list(out.shape), "finite": finite}))
    return 0


def measure(a, pack: str) -> dict:
    cmd = [sys.executable, __file__, "--child", "--pack", pack, "--frames", str(a.frames), "--size", a.size,
           "--calls", str(a.calls)] + (["--threads", str(a.threads)] if a.threads else [])
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    out, err = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    r = json.loads(out.strip().splitlines()[-1])
    peak = usage.ru_maxrss * 1024
    return {**r, "peakRss": peak, "callPeak": peak - r["rssAfterLoad"], "wallSeconds": round(time.time() - t0, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--pack", action="append", required=True, help="pack folder (repeatable)")
    ap.add_argument("--frames", type=int, default=8, help="T: frames of the one window")
    ap.add_argument("--size", default="320x576", help="HxW in pixels (latents are 1/spatialDownsample of it)")
    ap.add_argument("--calls", type=int, default=1, help="UNet calls per process")
    ap.add_argument("--repeat", type=int, default=2, help="processes per pack")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        a.pack = a.pack[0]
        return child(a)
    rows = []
    for i in range(a.repeat):
        for pack in a.pack:  # interleaved, so a change of machine load hits both
            r = {"pack": pack, "repeat": i + 1, **measure(a, pack)}
            rows.append(r)
            if not a.json:
                print(f"{pack} #{i + 1}: T={a.frames} {a.size}: after load {r['rssAfterLoad'] / GiB:.2f} GiB, peak "
                      f"{r['peakRss'] / GiB:.2f} GiB, call +{r['callPeak'] / GiB:.2f} GiB; load {r['loadSeconds']} s, "
                      f"call {r['callSeconds']} s", flush=True)
    if a.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
