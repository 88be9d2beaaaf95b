"""What every committed benchmark report records about where its numbers come from: the
command, the commit (and whether the tree had uncommitted changes), the date and the machine."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# CPU flags that change what a training step costs here (native bfloat16, AMX, AVX-512).
RELEVANT_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def machine() -> dict:
    """CPU model, cores, relevant flags and accelerators of this host."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return {"cpu": model, "architecture": platform.machine(), "cores": os.cpu_count(),
            "flags": [flag for flag in RELEVANT_FLAGS if flag in flags],
            "gpus": len(tf.config.list_physical_devices("GPU")),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)}


def provenance(module: str) -> dict:
    """The report's header: the command (`module` run with this process's arguments), commit,
    whether the tree had uncommitted changes, UTC date, machine."""
    return {"command": shlex.join(["python", "-m", module, *sys.argv[1:]]),
            "commit": _git("rev-parse", "HEAD"),
            "uncommitted_changes": bool(_git("status", "--porcelain", "--untracked-files=no")),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine()}
