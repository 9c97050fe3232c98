#!/usr/bin/env python3
"""The Python side of bench/vs-reference.ts: the reference DepthCrafter pipeline (its own code, from a local copy
of github.com/Tencent/DepthCrafter given by path, never committed) on the tiny exported models, with given noise,
and the measuring of a child process (CPU user+sys, wall, peak RSS) for both sides.

Subcommands (each prints one JSON line on stdout):
  prepare   --work DIR [--vae-layers N]     tiny models (make_tiny_depthcrafter.py) and their fp32 pack
                                            (export_depthcrafter.py), built once and reused from DIR
  noise     --out F.npz --frames N --window W --size WxH [--seed S]
                                            one draw of noise for both sides: pixel [N,3,H,W], latent [1,W,4,H/8,W/8]
  reference --depthcrafter DIR --tiny DIR --frames-dir DIR --noise F.npz --out F.npz [--steps --window --overlap
            --guidance --threads]        the reference pipeline (tools/parity_depthcrafter.py's child, reused as is),
                                            plus the CPU time of the pipeline call alone
  measure   [--stdout F] -- CMD ...        runs CMD as a child (os.wait4): its user/sys CPU, wall and peak RSS
  compare   A.npz B.npz                    max/mean |diff| of the "depth" arrays

Usage: node --import tsx bench/vs-reference.ts --reference /path/to/DepthCrafter (it calls these); see
docs/performance.md, "Comparison with the reference".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import parity_depthcrafter as parity  # noqa: E402  (its reference child, frame loader and segment layout)


def cmd_prepare(a) -> int:
    tiny = os.path.join(a.work, f"tiny-models-vae{a.vae_layers}")
    pack = os.path.join(a.work, f"pack-fp32-vae{a.vae_layers}")
    built = []
    if not os.path.isfile(os.path.join(tiny, "svd", "model_index.json")):
        parity.run([sys.executable, os.path.join(HERE, "make_tiny_depthcrafter.py"), "--out", tiny, "--seed", str(a.seed),
                    "--vae-layers", str(a.vae_layers)])
        built.append("models")
    if not os.path.isfile(os.path.join(pack, "manifest.json")):
        parity.run([sys.executable, os.path.join(HERE, "export_depthcrafter.py"), "--unet", os.path.join(tiny, "unet"),
                    "--svd", os.path.join(tiny, "svd"), "--out", pack, "--dtype", "float32",
                    "--name", "tiny-depthcrafter-float32",
                    "--description", "tiny random models of the DepthCrafter classes, for bench/vs-reference only"])
        built.append("pack")
    print(json.dumps({"tiny": tiny, "pack": pack, "built": built}))
    return 0


def cmd_noise(a) -> int:
    w, h = (int(v) for v in a.size.lower().split("x"))
    rng = np.random.default_rng(a.seed)
    # the same two draws, in the same order, as tools/parity_depthcrafter.py
    np.savez(a.out, pixel=rng.standard_normal((a.frames, 3, h, w)).astype(np.float32),
             latent=rng.standard_normal((1, min(a.window, a.frames), 4, h // 8, w // 8)).astype(np.float32))
    print(json.dumps({"noise": a.out, "frames": a.frames, "size": a.size, "window": a.window, "seed": a.seed}))
    return 0


def cmd_reference(a) -> int:
    import torch
    sys.path.insert(0, a.depthcrafter)
    from depthcrafter.depth_crafter_ppl import DepthCrafterPipeline

    stats: dict = {}
    call = DepthCrafterPipeline.__call__

    def timed(self, *args, **kwargs):  # CPU time (all threads of this process) of the pipeline call alone
        c0 = time.process_time()
        try:
            return call(self, *args, **kwargs)
        finally:
            stats["pipelineCpuS"] = time.process_time() - c0

    DepthCrafterPipeline.__call__ = timed
    ns = argparse.Namespace(depthcrafter=a.depthcrafter, threads=a.threads, ref_dtype="float32", tiny=a.tiny,
                            noise=a.noise, frames=a.frames_dir, guidance=[a.guidance], steps=a.steps, window=a.window,
                            overlap=a.overlap, out=a.out)
    # parity's child prints {"seconds", "frames", "fps"} (the pipeline call's wall time): capture and extend it
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = parity.reference_child(ns)
    res = json.loads(buf.getvalue().strip().splitlines()[-1])
    res.update(stats)
    res.update({"torchThreads": torch.get_num_threads(), "torchInteropThreads": torch.get_num_interop_threads(),
                "torch": torch.__version__})
    print(json.dumps(res))
    return rc


def cmd_measure(a) -> int:
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        raise SystemExit("measure: no command after --")
    import tempfile
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        rc = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    lines = stdout.strip().splitlines()
    print(json.dumps({"rc": rc, "userS": usage.ru_utime, "sysS": usage.ru_stime, "cpuS": usage.ru_utime + usage.ru_stime,
                      "wallS": wall, "maxRssBytes": usage.ru_maxrss * 1024, "stdoutLast": lines[-1] if lines else "",
                      "stderrTail": stderr[-4000:] if rc != 0 else ""}))
    return 0


def cmd_compare(a) -> int:
    x = np.load(a.a)["depth"].astype(np.float64)
    y = np.load(a.b)["depth"].astype(np.float64)
    if x.shape != y.shape:
        print(json.dumps({"error": f"shapes differ: {list(x.shape)} vs {list(y.shape)}"}))
        return 1
    d = np.abs(x - y)
    print(json.dumps({"shape": list(x.shape), "maxAbsDiff": float(d.max()), "meanAbsDiff": float(d.mean())}))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    sub = ap.add_subparsers(dest="sub", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--work", required=True)
    p.add_argument("--vae-layers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("noise")
    p.add_argument("--out", required=True)
    p.add_argument("--frames", type=int, required=True)
    p.add_argument("--window", type=int, required=True)
    p.add_argument("--size", required=True, help="WxH")
    p.add_argument("--seed", type=int, default=7)
    p = sub.add_parser("reference")
    p.add_argument("--depthcrafter", required=True, help="local copy of github.com/Tencent/DepthCrafter (never committed)")
    p.add_argument("--tiny", required=True)
    p.add_argument("--frames-dir", required=True)
    p.add_argument("--noise", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--window", type=int, default=16)
    p.add_argument("--overlap", type=int, default=4)
    p.add_argument("--guidance", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p = sub.add_parser("measure")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p = sub.add_parser("compare")
    p.add_argument("a")
    p.add_argument("b")
    a = ap.parse_args()
    return {"prepare": cmd_prepare, "noise": cmd_noise, "reference": cmd_reference, "measure": cmd_measure,
            "compare": cmd_compare}[a.sub](a)


if __name__ == "__main__":
    sys.exit(main())
