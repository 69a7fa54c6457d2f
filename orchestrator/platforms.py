"""Where the orchestrator runs: Kaggle, Colab, Paperspace or a local machine, and what that changes.

Detection reads documented signals only, first match wins:

| platform | signals |
|---|---|
| kaggle | `KAGGLE_KERNEL_RUN_TYPE` or `KAGGLE_URL_BASE` set, or `/kaggle/working` exists |
| colab | `COLAB_RELEASE_TAG` or `COLAB_GPU` set, or `/content` and `/usr/local/lib/python3*/dist-packages/google/colab` |
| paperspace | `PAPERSPACE_NOTEBOOK_REPO_ID` or `PAPERSPACE_FQDN` set, or `/notebooks` and `/storage` exist |
| local | anything else |

`--platform NAME` or `$ORCHESTRATOR_PLATFORM` forces one. A GPU is taken to be present
when `/proc/driver/nvidia` exists or `nvidia-smi` is on the PATH.

What a platform changes, before the configuration's own `platforms.<name>` overrides
(any key, merged over the document after `extends`), and never what the configuration
or the command line set explicitly:

- the state directory: `/kaggle/working/llm-orchestrator` (Kaggle keeps only that
  directory), Drive when mounted on Colab (`/content/drive/MyDrive/llm-orchestrator`,
  so the budget's ledger outlives the session), else `/content/llm-orchestrator`;
  `/storage/llm-orchestrator` on Paperspace;
- concurrency: a notebook shares a few cores, so `parallel_requests` is at most 8;
- the local tier: on a notebook platform without a GPU, a tier marked `local: true`
  that is not the simulator is left out (with a note): a 7B model on a notebook CPU
  would time out on every request.
"""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from actors.errors import ConfigError
from orchestrator.configdoc import LocatedDict, merge

PLATFORMS = ("kaggle", "colab", "paperspace", "local")
PLATFORM_ENV = "ORCHESTRATOR_PLATFORM"
NOTEBOOK_CONCURRENCY = 8


@attrs.frozen
class Platform:
    name: str
    why: str
    gpu: bool
    gpu_why: str
    notes: tuple[str, ...] = ()
    """What the platform changed in the configuration (shown by `orchestrator doctor`)."""

    @property
    def notebook(self) -> bool:
        return self.name != "local"


def detect(
    environ: Mapping[str, str],
    forced: str | None = None,
    *,
    exists: Callable[[str], bool] = os.path.exists,
    which: Callable[[str], str | None] = shutil.which,
) -> Platform:
    gpu, gpu_why = _gpu(exists, which)
    chosen = forced or environ.get(PLATFORM_ENV) or None
    if chosen is not None:
        if chosen not in PLATFORMS:
            raise ConfigError(f"platform {chosen!r}: not one of {', '.join(PLATFORMS)}")
        how = "--platform" if forced else f"${PLATFORM_ENV}"
        return Platform(chosen, f"forced by {how}", gpu, gpu_why)
    for name, signals in (
        ("kaggle", (("env", "KAGGLE_KERNEL_RUN_TYPE"), ("env", "KAGGLE_URL_BASE"), ("path", "/kaggle/working"))),
        ("colab", (("env", "COLAB_RELEASE_TAG"), ("env", "COLAB_GPU"), ("colab", ""))),
        ("paperspace", (("env", "PAPERSPACE_NOTEBOOK_REPO_ID"), ("env", "PAPERSPACE_FQDN"), ("paperspace", ""))),
    ):
        for kind, signal in signals:
            if kind == "env" and environ.get(signal):
                return Platform(name, f"{signal} is set", gpu, gpu_why)
            if kind == "path" and exists(signal):
                return Platform(name, f"{signal} exists", gpu, gpu_why)
            if kind == "colab" and exists("/content") and glob.glob("/usr/local/lib/python3*/dist-packages/google/colab"):
                return Platform(name, "/content and the google.colab package exist", gpu, gpu_why)
            if kind == "paperspace" and exists("/notebooks") and exists("/storage"):
                return Platform(name, "/notebooks and /storage exist", gpu, gpu_why)
    return Platform("local", "no notebook platform's signal", gpu, gpu_why)


def _gpu(exists: Callable[[str], bool], which: Callable[[str], str | None]) -> tuple[bool, str]:
    if exists("/proc/driver/nvidia"):
        return True, "/proc/driver/nvidia exists"
    if which("nvidia-smi"):
        return True, "nvidia-smi is on the PATH"
    return False, "no /proc/driver/nvidia, no nvidia-smi"


def state_dir_for(platform: Platform, exists: Callable[[str], bool] = os.path.exists) -> Path | None:
    """The platform's state directory, or None for the user's default."""
    if platform.name == "kaggle":
        return Path("/kaggle/working/llm-orchestrator")
    if platform.name == "colab":
        drive = "/content/drive/MyDrive"
        return Path(drive if exists(drive) else "/content") / "llm-orchestrator"
    if platform.name == "paperspace":
        return Path("/storage/llm-orchestrator")
    return None


def adapt(document: LocatedDict, platform: Platform, simulator_scheme: str) -> tuple[LocatedDict, Platform]:
    """The document as this platform runs it: resource defaults where the document is silent, then its overrides.

    Returns the document (each key keeping the file and line it came from) and the
    platform with notes saying what changed.
    """
    notes: list[str] = []
    adapted = LocatedDict({k: v for k, v in document.items() if k != "platforms"}, origins=document.origins)
    routing = adapted.get("llm_routing")
    if platform.notebook and isinstance(routing, dict):
        optimization = routing.get("optimization")
        parallel = optimization.get("parallel_requests") if isinstance(optimization, dict) else None
        if isinstance(parallel, int) and parallel > NOTEBOOK_CONCURRENCY:
            adapted = merge(adapted, {"llm_routing": {"optimization": {"parallel_requests": NOTEBOOK_CONCURRENCY}}})
            notes.append(f"parallel_requests {parallel} -> {NOTEBOOK_CONCURRENCY} (a notebook's few cores)")
        tiers = adapted["llm_routing"].get("model_tiers")
        if not platform.gpu and isinstance(tiers, dict):
            kept = LocatedDict(tiers, origins=getattr(tiers, "origins", {}))
            for name, tier in tiers.items():
                endpoint = str(tier.get("api_endpoint", "")) if isinstance(tier, dict) else ""
                if isinstance(tier, dict) and tier.get("local") and not endpoint.startswith(simulator_scheme):
                    del kept[name]
                    notes.append(f"local tier {name} left out: no GPU ({platform.gpu_why})")
            if len(kept) != len(tiers):
                routing_copy = LocatedDict(adapted["llm_routing"], origins=adapted["llm_routing"].origins)
                routing_copy["model_tiers"] = kept
                adapted["llm_routing"] = routing_copy
    overrides = (document.get("platforms") or {}).get(platform.name)
    if overrides:
        if not isinstance(overrides, dict):
            raise ConfigError(f"platforms.{platform.name}: must be a mapping of configuration keys")
        adapted = merge(adapted, overrides)
        notes.append(f"platforms.{platform.name} applied")
    return adapted, attrs.evolve(platform, notes=tuple(notes))
