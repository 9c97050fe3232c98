#!/usr/bin/env python3
"""Download the real DepthCrafter weights from the Hugging Face Hub and export them to a model pack.

The Python half of `depthcrafter-live models get depthcrafter` (src/cli/commands/models.ts), which makes the
export environment, runs this, then loads the pack with the project's loader and runs a tiny inference.

    tencent/DepthCrafter                            the UNet (config.json + its safetensors)
    stabilityai/stable-video-diffusion-img2vid-xt   vae/, image_encoder/ (weights + configs), feature_extractor/
                                                    and scheduler/ configs, model_index.json (a gated repo: accept
                                                    its licence on the Hub and set HF_TOKEN)

Files come through huggingface_hub's `snapshot_download` with `allow_patterns` naming exactly the files needed,
into huggingface_hub's own cache (HF_HOME / HF_HUB_CACHE; an interrupted download resumes), with its progress
bars on stderr. `--variant fp16` takes the fp16 weight files where a folder has them (tencent/DepthCrafter has
only one file, already fp16) and exports an fp16 pack. With HF_HUB_OFFLINE=1, or when the Hub cannot be reached,
only the cache is used. Then tools/export_depthcrafter.py writes the pack from the two snapshot folders.

    python tools/get_depthcrafter.py --out models/depthcrafter [--variant fp16] [--dtype float16|float32]
                                     [--revision main] [--svd-revision main] [--result result.json]

Exit status: 0 done; 2 a problem for the user to fix (no network and nothing cached, gated repo or missing
token, not enough disk space, missing packages), with one line saying so; 1 anything else. `--result FILE`
receives a JSON summary ({"ok": true, ...} or {"ok": false, "kind", "message"}).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
UNET_REPO = "tencent/DepthCrafter"
SVD_REPO = "stabilityai/stable-video-diffusion-img2vid-xt"
REQUIRED_MODULES = ("torch", "diffusers", "transformers", "onnx", "onnxruntime", "huggingface_hub")

# What each repo contributes: (folder inside the repo, weight-file stem or None for config-only files)
UNET_PARTS = [("", "diffusion_pytorch_model")]
SVD_PARTS = [("vae", "diffusion_pytorch_model"), ("image_encoder", "model")]
SVD_CONFIGS = ["model_index.json", "feature_extractor/preprocessor_config.json", "scheduler/scheduler_config.json"]
# what the dry run lists (fnmatch: * also matches /): only these folders, not SVD-xt's own UNet and checkpoints
CANDIDATES = {UNET_REPO: ["*.json", "*.safetensors"],
              SVD_REPO: SVD_CONFIGS + [f"{folder}/*" for folder, _ in SVD_PARTS]}


class Failure(Exception):
    """A failure with a one-line message; `user` ones (exit 2) are for the user to fix."""

    def __init__(self, kind: str, message: str, user: bool = True) -> None:
        super().__init__(message)
        self.kind = kind
        self.user = user
        self.reach = ""  # for network failures: why the Hub could not be reached


def say(msg: str) -> None:
    print(f"[get] {msg}", file=sys.stderr, flush=True)


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


# ---------------------------------------------------------------------------------------------
# which files: the same choice from a Hub listing, a cached listing or a cached snapshot folder


def weight_files(paths: list[str], folder: str, stem: str, variant: str | None) -> tuple[list[str], str | None]:
    """The safetensors weights (single file or shards + index) of one model folder: the `variant` files where the
    folder has them, else the plain ones. Returns (paths, variant used)."""
    prefix = f"{folder}/" if folder else ""
    names = [p[len(prefix):] for p in paths if p.startswith(prefix) and "/" not in p[len(prefix):]]
    s = re.escape(stem)
    plain = re.compile(rf"^{s}(-\d+-of-\d+)?\.safetensors$|^{s}\.safetensors\.index\.json$")
    chosen: list[str] = []
    used = None
    if variant:
        v = re.escape(variant)
        var = re.compile(rf"^{s}\.{v}(-\d+-of-\d+)?\.safetensors$|^{s}\.safetensors\.index\.{v}\.json$")
        chosen = [n for n in names if var.match(n)]
        used = variant if chosen else None
    if not chosen:
        chosen = [n for n in names if plain.match(n)]
    return sorted(prefix + n for n in chosen), used


def plan_files(repo: str, paths: list[str], variant: str | None) -> tuple[list[str], dict]:
    """Files to take from `repo` (given the repo's file paths) and the variant used per folder."""
    parts, configs = (UNET_PARTS, []) if repo == UNET_REPO else (SVD_PARTS, SVD_CONFIGS)
    files = list(configs)
    variants = {}
    for folder, stem in parts:
        cfg = f"{folder}/config.json" if folder else "config.json"
        weights, used = weight_files(paths, folder, stem, variant)
        if cfg not in paths or not weights:
            what = f"{folder}/" if folder else "the repo root"
            raise Failure("layout", f"{repo}: no {'config.json' if cfg not in paths else f'{stem}*.safetensors weights'} in {what} "
                          f"(files there: {', '.join(sorted(p for p in paths if p.startswith(folder))[:12]) or 'none'})")
        files += [cfg] + weights
        variants[folder or "."] = used or "default"
    missing = [c for c in configs if c not in paths]
    if missing:
        raise Failure("layout", f"{repo}: missing {', '.join(missing)}")
    return files, variants


def cached_paths(repo: str, revision: str, cache_dir: str) -> tuple[list[str], str] | None:
    """The repo's file list and commit from the cache: its tree listing if one is cached, else the snapshot folder."""
    storage = repo_storage(cache_dir, repo)
    commit = revision if re.fullmatch(r"[0-9a-f]{40}", revision) else None
    ref = os.path.join(storage, "refs", revision)
    if commit is None and os.path.isfile(ref):
        with open(ref) as fh:
            commit = fh.read().strip()
    if commit is None:
        return None
    try:
        from huggingface_hub import get_cached_repo_tree
        return [f.path for f in get_cached_repo_tree(repo, revision=commit, cache_dir=cache_dir)], commit
    except Exception:  # no tree listing cached (older huggingface_hub, or a hand-made cache): list the snapshot
        pass
    snap = os.path.join(storage, "snapshots", commit)
    if not os.path.isdir(snap):
        return None
    out = []
    for root, _, names in os.walk(snap):
        for n in names:
            out.append(os.path.relpath(os.path.join(root, n), snap).replace(os.sep, "/"))
    return out, commit


def repo_storage(cache_dir: str, repo: str) -> str:
    """The repo's folder in the cache (huggingface_hub's layout: models--{org}--{name})."""
    return os.path.join(cache_dir, "models--" + repo.replace("/", "--"))


# ---------------------------------------------------------------------------------------------
# errors from huggingface_hub, as one line naming the repo


def chain(e: BaseException):
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def hub_failure(repo: str, e: BaseException, cache_dir: str) -> Failure:
    from huggingface_hub import errors as hf_errors
    from huggingface_hub.utils import get_token

    token = get_token() is not None
    for c in chain(e):
        if isinstance(c, hf_errors.GatedRepoError):
            return Failure("gated", f"{repo} is a gated repo: accept its licence at https://huggingface.co/{repo} while logged "
                           "in, then set HF_TOKEN to a read token of that account"
                           + ("" if token else " (no token is set: HF_TOKEN is empty and there is no saved login)")
                           + ("; the token that is set has no access yet" if token else ""))
        if isinstance(c, hf_errors.RepositoryNotFoundError):
            return Failure("not-found", f"{repo}: the Hub says not found or not accessible"
                           + ("" if token else " (no token is set: set HF_TOKEN if the repo needs one)"))
        if isinstance(c, hf_errors.RevisionNotFoundError):
            return Failure("revision", f"{repo}: {c}")
        if isinstance(c, hf_errors.IncompleteSnapshotError):
            return Failure("offline", f"{repo}: the Hugging Face cache at {cache_dir} holds only part of the files needed and the Hub "
                           f"cannot be used ({offline_reason()}); run again with network access to complete it")
        if isinstance(c, OSError) and getattr(c, "errno", None) == 28:
            return Failure("disk", f"{repo}: no space left on the device while downloading ({c}); free space or point "
                           "HF_HUB_CACHE at a larger disk, then run again (the download resumes)")
        status = c.response.status_code if isinstance(c, hf_errors.HfHubHTTPError) and getattr(c, "response", None) is not None else 0
        if status == 401:
            return Failure("token", f"{repo}: the Hub refused the request (401)"
                           + (": HF_TOKEN is not valid" if token else ": set HF_TOKEN (no token is set)"))
        if status >= 500 or status == 429:
            f = Failure("network", f"{repo}: the Hugging Face Hub answered {status} (server busy or down); run again later: "
                        "finished files stay in the cache and an interrupted download resumes")
            f.reach = f"the Hugging Face Hub answered {status}"
            return f
    for c in chain(e):
        name = type(c).__name__
        if isinstance(c, hf_errors.OfflineModeIsEnabled) or "Connect" in name or "Timeout" in name or isinstance(c, ConnectionError):
            first = str(c).splitlines()[0][:200] if str(c) else ""
            f = Failure("network", f"{repo}: the Hugging Face Hub could not be reached ({name}: {first}); check the network "
                        "(or HF_ENDPOINT / proxy settings) and run again: finished files stay in the cache and an interrupted "
                        "download resumes")
            f.reach = f"the Hugging Face Hub could not be reached ({name}: {first})"
            return f
    return Failure("hub", f"{repo}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", user=False)


def offline_reason() -> str:
    from huggingface_hub import constants
    return "HF_HUB_OFFLINE=1 is set" if constants.HF_HUB_OFFLINE else "the Hub could not be reached"


# ---------------------------------------------------------------------------------------------
# planning, disk space, download


def local_param_counts(path: str) -> dict[str, int] | None:
    """Parameter counts per dtype from a local safetensors header (8-byte length + JSON)."""
    try:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
    except Exception:
        return None
    counts: dict[str, int] = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        numel = 1
        for d in v["shape"]:
            numel *= d
        counts[v["dtype"]] = counts.get(v["dtype"], 0) + numel
    return counts


class RepoPlan:
    def __init__(self, repo: str, revision: str) -> None:
        self.repo = repo
        self.revision = revision
        self.commit: str | None = None
        self.files: list[str] = []
        self.variants: dict = {}
        self.sizes: dict[str, int] = {}
        self.to_download = 0
        self.offline = False
        self.offline_why = ""
        self.params: dict[str, int] = {}  # weight file -> parameters (for the export estimate)
        self.path: str | None = None


def plan_repo(repo: str, revision: str, variant: str | None, cache_dir: str, offline: bool) -> RepoPlan:
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub import errors as hf_errors

    p = RepoPlan(repo, revision)
    if not offline:
        try:
            HfApi().auth_check(repo)  # gated / not found / bad token, before anything is downloaded
            # the files of the folders that matter, with their sizes and whether they are cached (nothing is downloaded)
            listing = snapshot_download(repo, revision=revision, cache_dir=cache_dir, dry_run=True,
                                        allow_patterns=CANDIDATES[repo])
            paths = [f.filename for f in listing]
            p.files, p.variants = plan_files(repo, paths, variant)
            info = {f.filename: f for f in listing}
            p.commit = listing[0].commit_hash if listing else None
            p.sizes = {f: int(info[f].file_size or 0) for f in p.files}
            p.to_download = sum(p.sizes[f] for f in p.files if info[f].will_download)
            api = HfApi()
            for f in p.files:
                if f.endswith(".safetensors"):
                    try:
                        meta = api.parse_safetensors_file_metadata(repo, f, revision=p.commit or revision)
                        p.params[f] = sum(meta.parameter_count.values())
                    except Exception:
                        p.params[f] = p.sizes[f] // 2  # unknown dtype: assume fp16 (over-estimates an fp32 export)
            return p
        except Failure:
            raise
        except (hf_errors.GatedRepoError, hf_errors.RepositoryNotFoundError, hf_errors.RevisionNotFoundError) as e:
            raise hub_failure(repo, e, cache_dir) from None
        except Exception as e:  # the Hub cannot be reached: the cache may still have it
            f = hub_failure(repo, e, cache_dir)
            if f.kind != "network":
                raise f from None
            p.offline, p.offline_why = True, f.reach
            say(f"{repo}: {f.reach}; looking in the cache")
    else:
        p.offline, p.offline_why = True, "HF_HUB_OFFLINE=1 is set, so the Hub is not asked"
    found = cached_paths(repo, revision, cache_dir)
    if found is None:
        fix = ("unset HF_HUB_OFFLINE to download it" if not p.offline_why.startswith("the Hugging Face Hub")
               else "check the network (or HF_ENDPOINT / proxy settings) and run again")
        raise Failure("offline" if "HF_HUB_OFFLINE" in p.offline_why else "network",
                      f"{repo} (revision {revision}) is not in the Hugging Face cache at {cache_dir}, and {p.offline_why}: "
                      f"{fix}, or point HF_HOME / HF_HUB_CACHE at a cache that has it")
    paths, p.commit = found
    p.files, p.variants = plan_files(repo, paths, variant)
    snap = os.path.join(repo_storage(cache_dir, repo), "snapshots", p.commit)
    for f in p.files:  # parameter counts for the disk estimate, from the cached files' headers
        fp = os.path.join(snap, f)
        if f.endswith(".safetensors") and os.path.isfile(fp):
            counts = local_param_counts(fp)
            p.params[f] = sum(counts.values()) if counts else os.path.getsize(fp) // 2
    return p


def fs_free(path: str) -> tuple[int, int]:
    """(free bytes, device id) of the filesystem that holds `path` (or would: its nearest existing parent)."""
    p = os.path.abspath(path)
    while not os.path.exists(p):
        p = os.path.dirname(p)
    return shutil.disk_usage(p).free, os.stat(p).st_dev


def check_disk(plans: list[RepoPlan], cache_dir: str, out: str, dtype: str) -> dict:
    """Enough room for what is still to download (into the cache) and for the pack (plus the export's temporary
    copy of its largest file)? Estimates from parameter counts; raises a Failure when short."""
    elt = 2 if dtype == "float16" else 4
    unet = sum(v for f, v in plans[0].params.items()) * elt
    clip = sum(v for f, v in plans[1].params.items() if f.startswith("image_encoder/")) * elt
    vae = sum(v for f, v in plans[1].params.items() if f.startswith("vae/")) * 4  # encoder fp32; decoder <= fp32
    pack = unet + clip + vae
    export_need = pack + max(unet, clip)  # the exporter writes a temporary copy of a file before the final one
    download = sum(p.to_download for p in plans)
    (cache_free, cache_dev), (out_free, out_dev) = fs_free(cache_dir), fs_free(out)
    margin = 200e6
    needs = [(cache_dir, cache_free, download)] if cache_dev != out_dev else []
    needs.append((out, out_free, export_need + (download if cache_dev == out_dev else 0)))
    for where, free, need in needs:
        if need > 0 and free < need + margin:
            raise Failure("disk", f"not enough disk space: about {gb(need + margin)} needed on the disk of {where} "
                          f"(download {gb(download)} into the Hugging Face cache {cache_dir}; pack about {gb(pack)} "
                          f"plus {gb(export_need - pack)} while exporting, into {out}), {gb(free)} free. Free space, "
                          "or set HF_HUB_CACHE / --out to a larger disk")
    return {"downloadBytes": download, "packBytesEstimate": pack, "exportPeakBytesEstimate": export_need,
            "cacheFree": cache_free, "outFree": out_free}


def download(p: RepoPlan, cache_dir: str) -> str:
    from huggingface_hub import snapshot_download

    t0 = time.time()
    what = f"{len(p.files)} files, {gb(p.to_download)} to download" if not p.offline else f"{len(p.files)} files from the cache"
    say(f"{p.repo}@{(p.commit or p.revision)[:10]}: {what}")
    try:
        # online by the revision's name, so that huggingface_hub records refs/<revision> for later offline runs
        path = snapshot_download(p.repo, revision=(p.commit or p.revision) if p.offline else p.revision, cache_dir=cache_dir,
                                 allow_patterns=p.files, local_files_only=p.offline)
    except Exception as e:
        f = hub_failure(p.repo, e, cache_dir)
        if p.offline and f.kind in ("hub", "offline"):
            raise Failure("offline", f"{p.repo}: {p.offline_why or offline_reason()}, and the Hugging Face cache at {cache_dir} does not "
                          f"have the files needed ({str(e).splitlines()[0][:300]}). Run once with network access") from None
        raise f from None
    p.commit = os.path.basename(os.path.normpath(path))  # snapshots/<commit>
    missing = [f for f in p.files if not os.path.isfile(os.path.join(path, f))]
    if missing:
        raise Failure("offline", f"{p.repo}: the cached snapshot {path} lacks {', '.join(missing)} and the Hub cannot be used "
                      f"({p.offline_why or offline_reason()}). Run once with network access")
    for f in p.files:
        if f.endswith(".safetensors") and f not in p.params:
            counts = local_param_counts(os.path.join(path, f))
            p.params[f] = sum(counts.values()) if counts else os.path.getsize(os.path.join(path, f)) // 2
        p.sizes.setdefault(f, os.path.getsize(os.path.join(path, f)))
    say(f"{p.repo}: ready at {path} ({time.time() - t0:.1f} s)")
    p.path = path
    return path


# ---------------------------------------------------------------------------------------------


def run(a: argparse.Namespace) -> dict:
    missing = []
    for m in (["huggingface_hub"] if a.env_checked else REQUIRED_MODULES):
        try:
            __import__(m)
        except Exception as e:  # noqa: BLE001 - any import failure means the environment is not usable
            missing.append(f"{m} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    if missing:
        raise Failure("environment", f"{sys.executable} lacks {'; '.join(missing)}: install tools/requirements-export.txt into it")
    from huggingface_hub import constants

    cache_dir = a.cache_dir or constants.HF_HUB_CACHE
    offline = bool(constants.HF_HUB_OFFLINE)
    dtype = a.dtype or ("float16" if a.variant == "fp16" else "float32")
    t0 = time.time()
    say(f"Hugging Face cache: {cache_dir}{' (HF_HUB_OFFLINE=1: cache only)' if offline else ''}")
    plans = [plan_repo(UNET_REPO, a.revision, a.variant, cache_dir, offline),
             plan_repo(SVD_REPO, a.svd_revision, a.variant, cache_dir, offline)]
    disk = check_disk(plans, cache_dir, a.out, dtype)
    say(f"disk: {gb(disk['downloadBytes'])} to download, pack about {gb(disk['packBytesEstimate'])}")
    paths = [download(p, cache_dir) for p in plans]
    t_download = time.time() - t0

    src = [f"{p.repo}@{p.commit}: {', '.join(p.files)}" for p in plans]
    variants = ", ".join(f"{p.repo.split('/')[1]}/{k}: {v}" for p in plans for k, v in p.variants.items())
    cmd = [sys.executable, os.path.join(HERE, "export_depthcrafter.py"), "--unet", paths[0], "--svd", paths[1], "--out", a.out,
           "--dtype", dtype, "--name", a.name, "--version", a.version, "--training-domain", "real",
           # an fp32 image encoder of the real size (2.5 GB) is over protobuf's 2 GB: every file in external data then
           "--external-data", "unet" if dtype == "float16" else "all",
           "--description", f"DepthCrafter: UNet {UNET_REPO}@{plans[0].commit[:7]}, VAE and image encoder "
                            f"{SVD_REPO}@{plans[1].commit[:7]} (weights: {variants}); exported by depthcrafter-live models get "
                            f"as {dtype} (the VAE encoder float32)."]
    if a.variant:
        cmd += ["--variant", a.variant]
    for s in src:
        cmd += ["--source", s]
    if a.device:
        cmd += ["--device", a.device]
    say(f"export: tools/export_depthcrafter.py --out {a.out} --dtype {dtype}" + (f" --variant {a.variant}" if a.variant else ""))
    t1 = time.time()
    r = subprocess.run(cmd, stdout=sys.stderr)
    if r.returncode != 0:
        raise Failure("export", f"tools/export_depthcrafter.py failed (exit {r.returncode}); its output is above", user=False)
    t_export = time.time() - t1
    return {
        "ok": True,
        "pack": os.path.abspath(a.out),
        "dtype": dtype,
        "variant": a.variant,
        "cacheDir": cache_dir,
        "offline": any(p.offline for p in plans),
        "repos": [{"repo": p.repo, "revision": p.revision, "commit": p.commit, "snapshot": p.path, "files": p.files,
                   "variants": p.variants, "downloadedBytes": p.to_download, "offline": p.offline} for p in plans],
        "disk": disk,
        "seconds": {"download": round(t_download, 1), "export": round(t_export, 1)},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--out", required=True, help="pack folder to write")
    ap.add_argument("--variant", choices=["fp16"], default=None, help="take the fp16 weight files where the repos have them")
    ap.add_argument("--dtype", choices=["float16", "float32"], default=None, help="pack dtype (default: float16 with --variant fp16, else float32)")
    ap.add_argument("--revision", default="main", help=f"revision of {UNET_REPO}")
    ap.add_argument("--svd-revision", default="main", help=f"revision of {SVD_REPO}")
    ap.add_argument("--cache-dir", default=None, help="huggingface_hub cache (default: HF_HUB_CACHE, i.e. HF_HOME/hub)")
    ap.add_argument("--device", default=None, help="where export_depthcrafter.py traces (its default: cuda when present, else cpu)")
    ap.add_argument("--name", default="depthcrafter")
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--result", default=None, help="write a JSON summary here")
    ap.add_argument("--env-checked", action="store_true", help="the caller has imported the required modules with this Python "
                    "(skips importing torch & co. here; the export imports them)")
    a = ap.parse_args()

    def put(obj: dict) -> None:
        if a.result:
            with open(a.result, "w") as fh:
                json.dump(obj, fh, indent=2)

    try:
        res = run(a)
    except Failure as f:
        put({"ok": False, "kind": f.kind, "message": str(f), "user": f.user})
        if not a.result:  # with --result the caller reports it
            print(f"error: {f}", file=sys.stderr)
        return 2 if f.user else 1
    except KeyboardInterrupt:
        put({"ok": False, "kind": "interrupted", "message": "interrupted: finished files stay in the cache and a download resumes", "user": True})
        return 130
    put(res)
    say(f"done: {res['pack']} (download {res['seconds']['download']} s, export {res['seconds']['export']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
