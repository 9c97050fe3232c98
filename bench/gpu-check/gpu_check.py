#!/usr/bin/env python3
"""GPU check: a pack of the real DepthCrafter architecture with random weights, `infer` on each execution provider
that loads, and the reference PyTorch pipeline on the same GPU and weights; one table at the end. Run it through
bench/gpu-check.sh (which finds the Python and builds the CLI). Nothing is downloaded: the networks are built from
the diffusers/transformers classes installed with PyTorch.

Steps (each one's wall time is reported; the whole run keeps to --budget seconds, later steps are skipped or cut off
with a note when it runs out):
  1. models   tools/make_tiny_depthcrafter.py --real-size (dry run: the tiny models of the same classes)
  2. pack     tools/export_depthcrafter.py, fp16 traced on CUDA, fused attention (dry run: fp32 on the CPU)
  3. clips    `depthcrafter-live synth` at each size, one draw of noise for the parity run at the first size
  4. per size: the reference (bench/gpu-check/reference_pipeline.py), then `infer --json` on each provider
     (cuda at every size first, then webgpu, tensorrt, cpu; cpu only at the first size), window 110 / overlap 25 /
     5 steps (dry run: 8/3/2)
  5. the table: ms/frame per stage (image encoder, VAE encoder, UNet, VAE decoder), total, peak GPU memory (an
     nvidia-smi query loop every 100 ms; RSS when there is no nvidia-smi), and the ratio of our ms/frame to the
     reference's; at the first size also the max |depth difference| to the reference (same noise).

    bash bench/gpu-check.sh                         # on a machine with an NVIDIA GPU, PyTorch with CUDA
    bash bench/gpu-check.sh --dry-run --device cpu  # every step on the CPU at a tiny shape (CI, test/gpu-check.test.ts)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOOLS = os.path.join(ROOT, "tools")
CLI = ["node", os.path.join(ROOT, "bin", "depthcrafter-live.js")]
STAGES = [("encodeImage", "imageEncoder", "image enc"), ("encodeLatent", "vaeEncoder", "VAE enc"),
          ("denoise", "unet", "UNet"), ("decode", "vaeDecoder", "VAE dec")]
MiB = 1024 ** 2


class Budget:
    def __init__(self, seconds: float) -> None:
        self.t0, self.seconds = time.time(), seconds

    def left(self) -> float:
        return self.seconds - (time.time() - self.t0)


class GpuMemory:
    """nvidia-smi --query-gpu=memory.used every 100 ms while a step runs; peak in MiB (None without nvidia-smi)."""

    def __init__(self) -> None:
        self.available = shutil.which("nvidia-smi") is not None
        self.proc = None
        self.values: list[int] = []

    def __enter__(self):
        self.values = []
        if self.available:
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-lms", "100"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.values.append(sum(int(v) for v in line.split(",") if v.strip()))
            except ValueError:
                pass

    def __exit__(self, *exc) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait()
            self.reader.join(timeout=2)

    @property
    def peak_mib(self) -> int | None:
        return max(self.values) if self.values else None


def run(cmd: list[str], timeout: float, env: dict | None = None) -> dict:
    """Child process with a time limit: stdout, stderr tail, wall seconds, peak RSS (wait4), timed out or not."""
    import tempfile
    t0 = time.time()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, start_new_session=True)
        timed_out = False
        deadline = t0 + max(timeout, 1)
        status, usage = None, None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.time() > deadline:
                timed_out = True
                os.killpg(proc.pid, 9)
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.1)
        out.seek(0)
        err.seek(0)
        return {"rc": os.waitstatus_to_exitcode(status), "stdout": out.read().decode(errors="replace"),
                "stderr": err.read().decode(errors="replace")[-4000:], "seconds": round(time.time() - t0, 1),
                "peakRssBytes": usage.ru_maxrss * 1024, "timedOut": timed_out}


def last_json(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def why(r: dict) -> str:
    if r["timedOut"]:
        return f"timed out after {r['seconds']} s"
    lines = [l for l in r["stderr"].splitlines() if l.strip() and "Warning:" not in l]
    err = next((l for l in reversed(lines) if "error" in l.lower()), lines[-1] if lines else f"exit code {r['rc']}")
    return err.strip()[:400]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--dry-run", action="store_true", help="tiny models of the real classes, tiny shapes")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="where PyTorch runs (tracing, the reference)")
    ap.add_argument("--work", default=None, help="working folder (default: .tmp/gpu-check[-dry]); models and pack are reused")
    ap.add_argument("--budget", type=float, default=480, help="seconds for the whole run (default 480 = 8 minutes)")
    ap.add_argument("--providers", default=None, help="comma list (default: cuda,webgpu,tensorrt,cpu, run in that order after the reference; dry run: cpu)")
    ap.add_argument("--sizes", default=None, help="comma list of WxH (default 512x256,1024x576; dry run: 128x64,192x128)")
    ap.add_argument("--frames", type=int, default=None, help="frames per clip (default 110 = one window; dry run 12)")
    ap.add_argument("--window", type=int, default=None)
    ap.add_argument("--overlap", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--run-timeout", type=float, default=None, help="cap per infer/reference run in seconds (default 180; dry run 120)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for the cpu provider and a CPU reference (0: default)")
    ap.add_argument("--json-out", default=None, help="also write the report here (default WORK/report.json)")
    a = ap.parse_args()

    dry = a.dry_run
    if not dry and a.device == "cpu":
        print("[gpu-check] --device cpu without --dry-run: the real architecture on the CPU takes far longer than the budget; "
              "running anyway", flush=True)
    providers = (a.providers or ("cpu" if dry else "cuda,webgpu,tensorrt,cpu")).split(",")
    sizes = (a.sizes or ("128x64,192x128" if dry else "512x256,1024x576")).split(",")
    frames = a.frames or (12 if dry else 110)
    window, overlap, steps = a.window or (8 if dry else 110), a.overlap or (3 if dry else 25), a.steps or (2 if dry else 5)
    run_cap = a.run_timeout or (120 if dry else 180)
    work = os.path.abspath(a.work or os.path.join(ROOT, ".tmp", "gpu-check-dry" if dry else "gpu-check"))
    os.makedirs(work, exist_ok=True)
    budget = Budget(a.budget)
    py = sys.executable
    gpu = GpuMemory()
    report: dict = {"dryRun": dry, "device": a.device, "frames": frames, "window": window, "overlap": overlap, "steps": steps,
                    "sizes": sizes, "providers": providers, "budgetSeconds": a.budget, "steps_": [], "runs": []}

    def step(name: str, cmd: list[str], timeout: float | None = None, env: dict | None = None) -> dict | None:
        left = budget.left()
        if left < 5:
            report["steps_"].append({"step": name, "skipped": "budget"})
            print(f"[gpu-check] {name}: skipped (budget spent)", flush=True)
            return None
        r = run(cmd, min(timeout or left, left), env)
        ok = r["rc"] == 0 and not r["timedOut"]
        report["steps_"].append({"step": name, "seconds": r["seconds"], "ok": ok, **({} if ok else {"why": why(r)})})
        print(f"[gpu-check] {name}: {'ok' if ok else 'FAILED: ' + why(r)} ({r['seconds']} s)", flush=True)
        return r if ok else None

    # environment
    info = {"python": sys.version.split()[0]}
    try:
        import torch
        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except Exception as e:  # noqa: BLE001
        info["torch"] = f"not importable: {e}"
    info["nvidiaSmi"] = gpu.available
    report["environment"] = info
    print(f"[gpu-check] {json.dumps(info)}; work folder {work}", flush=True)
    if a.device == "cuda" and not info.get("cuda"):
        print("[gpu-check] --device cuda but PyTorch sees no CUDA device; use --dry-run --device cpu on a machine without a GPU",
              file=sys.stderr)
        return 2

    # 1-2. models and pack
    models = os.path.join(work, "models")
    pack = os.path.join(work, "pack")
    if not os.path.isfile(os.path.join(models, "svd", "model_index.json")):
        if step("models", [py, os.path.join(TOOLS, "make_tiny_depthcrafter.py"), "--out", models, "--seed", "0",
                           *(["--vae-layers", "2"] if dry else ["--real-size"])]) is None:
            return finish(report, work, a)
    if not os.path.isfile(os.path.join(pack, "manifest.json")):
        dtype = "float32" if dry else "float16"
        if step("pack", [py, os.path.join(TOOLS, "export_depthcrafter.py"), "--unet", os.path.join(models, "unet"), "--svd",
                         os.path.join(models, "svd"), "--out", pack, "--dtype", dtype, "--device", a.device,
                         "--name", "gpu-check-random", "--max-window", str(max(window, 110)), "--attention", "mha",
                         *([] if dry else ["--no-validate"]),
                         "--description", "random weights of the real DepthCrafter architecture (bench/gpu-check.sh)"]) is None:
            return finish(report, work, a)
    report["pack"] = {"dir": pack, "manifest": json.load(open(os.path.join(pack, "manifest.json")))["description"]}

    import numpy as np
    clips: dict[str, dict] = {}
    for si, size in enumerate(sizes):
        W, H = (int(v) for v in size.lower().split("x"))
        clip = os.path.join(work, f"clip-{size}-{frames}")
        if not os.path.isdir(os.path.join(clip, "rgb")):
            if step(f"clip {size}", CLI + ["synth", "--frames", str(frames), "--size", size, "--seed", "3", "--out", clip]) is None:
                continue
        noise = None
        if si == 0:  # same noise for ours and the reference: a parity figure at the first size
            noise = os.path.join(work, f"noise-{size}-{frames}-w{window}.npz")
            if not os.path.isfile(noise):
                rng = np.random.default_rng(7)
                np.savez(noise, pixel=rng.standard_normal((frames, 3, H, W)).astype(np.float32),
                         latent=rng.standard_normal((1, min(window, frames), 4, H // 8, W // 8)).astype(np.float32))
        clips[size] = {"rgb": os.path.join(clip, "rgb"), "noise": noise, "first": si == 0, "ref": None, "refDepth": None}

    def reference(size: str) -> None:
        c = clips[size]
        ref_out = os.path.join(work, f"ref-{size}.npz")
        cmd = [py, os.path.join(HERE, "reference_pipeline.py"), "--models", models, "--frames", c["rgb"],
               "--window", str(window), "--overlap", str(overlap), "--steps", str(steps), "--device", a.device,
               "--out", ref_out, "--json", *(["--noise", c["noise"]] if c["noise"] else []),
               *(["--threads", str(a.threads)] if a.threads else [])]
        with gpu:
            r = step(f"reference {size}", cmd, run_cap)
        ref = last_json(r["stdout"]) if r else None
        row = {"size": size, "provider": "reference (PyTorch)", "ok": ref is not None, "peakGpuMiB": gpu.peak_mib}
        if ref:
            row.update({"msPerFrame": ref["msPerFrame"], "peakRssBytes": r["peakRssBytes"], "loadSeconds": ref["seconds"]["load"],
                        "peakGpuAllocatedMiB": round(ref.get("peakGpuAllocatedBytes", 0) / MiB) or None})
            c["ref"], c["refDepth"] = ref, np.load(ref_out)["depth"]
        else:
            row["why"] = report["steps_"][-1].get("why") or report["steps_"][-1].get("skipped")
        report["runs"].append(row)

    def ours(prov: str, size: str) -> None:
        c = clips[size]
        if prov == "cpu" and not c["first"] and not dry:
            report["runs"].append({"size": size, "provider": prov, "ok": False, "why": "skipped at the big shape"})
            return
        out = os.path.join(work, f"out-{prov}-{size}")
        cmd = CLI + ["infer", c["rgb"], "--model", pack, "--device", prov, "--window", str(window),
                     "--overlap", str(overlap), "--steps", str(steps), "--output-size", "model", "--no-videos",
                     "--no-compress", "--out", out, "--json", *(["--noise", c["noise"]] if c["noise"] else []),
                     *(["--threads", str(a.threads)] if a.threads and prov == "cpu" else [])]
        with gpu:
            r = step(f"infer {prov} {size}", cmd, run_cap)
        res = last_json(r["stdout"]) if r else None
        row = {"size": size, "provider": prov, "ok": res is not None, "peakGpuMiB": gpu.peak_mib}
        if res:
            st = res["stats"]
            row["msPerFrame"] = {k2: round(st["ms"][k] / frames, 2) for k, k2, _ in STAGES}
            row["msPerFrame"]["total"] = round(sum(st["ms"][k] for k, _, _ in STAGES) / frames, 2)
            row.update({"peakRssBytes": r["peakRssBytes"], "workerRssBytes": res.get("workerRssBytes"), "wallSeconds": r["seconds"]})
            if c["ref"]:
                row["ratioToReference"] = round(row["msPerFrame"]["total"] / max(c["ref"]["msPerFrame"]["total"], 1e-9), 3)
            if c["refDepth"] is not None and c["noise"]:
                d = np.load(res["files"]["npz"])["depth"]
                if d.shape == c["refDepth"].shape:
                    row["depthMaxAbsDiffToReference"] = float(np.abs(d - c["refDepth"]).max())
        else:
            last = report["steps_"][-1]
            row["why"] = last.get("why") or last.get("skipped")
        report["runs"].append(row)

    # in order of what matters most within the budget: the reference and the first provider at every size, then the
    # others (TensorRT builds engines for minutes: it comes late, cpu last)
    first, rest = providers[:1], providers[1:]
    for size in clips:
        reference(size)
        for prov in first:
            ours(prov, size)
    for prov in rest:
        for size in clips:
            ours(prov, size)
    order = {s: i for i, s in enumerate(clips)}
    report["runs"].sort(key=lambda r: order.get(r["size"], 99))  # table grouped by size (stable: run order within)
    return finish(report, work, a)


def finish(report: dict, work: str, a) -> int:
    report["seconds"] = round(sum(s.get("seconds", 0) for s in report["steps_"]), 1)
    path = a.json_out or os.path.join(work, "report.json")
    with open(path, "w") as fh:
        json.dump(report, fh, indent=2)
    mem_label = "peak GPU MiB" if report["environment"].get("nvidiaSmi") else "peak RSS MiB"
    print(f"\n| size | provider | {' | '.join(s[2] for s in STAGES)} | total ms/frame | ratio to reference | {mem_label} | depth vs reference |")
    print("|---|---|" + "---|" * (len(STAGES) + 4))
    for r in report["runs"]:
        if not r["ok"]:
            print(f"| {r['size']} | {r['provider']} | " + " | ".join("-" for _ in STAGES) + f" | - | - | - | {r.get('why', '')} |")
            continue
        ms = r["msPerFrame"]
        mem = r.get("peakGpuMiB") if report["environment"].get("nvidiaSmi") else round(r["peakRssBytes"] / MiB)
        diff = r.get("depthMaxAbsDiffToReference")
        print(f"| {r['size']} | {r['provider']} | " + " | ".join(f"{ms[s[1]]:.1f}" for s in STAGES)
              + f" | {ms['total']:.1f} | {r.get('ratioToReference', '-') if 'reference' not in r['provider'] else '1'} | {mem}"
              + f" | {'-' if diff is None else f'{diff:.1e}'} |")
    failed = [s for s in report["steps_"] if s.get("ok") is False and s["step"] in ("models", "pack")]
    print(f"\n[gpu-check] {report['seconds']} s in steps; report {path}")
    return 1 if failed or not any(r["ok"] and r["provider"] != "reference (PyTorch)" for r in report["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
