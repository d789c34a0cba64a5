#!/usr/bin/env python3
"""Set up and run Subliminal from a fresh clone, with nothing but Python 3.11+.

    python3 dev.py up      set up .venv, then run everything on the embedded default
                           (API-less `sublim up` with the bundled example executor and a demo)
    python3 dev.py test    set up .venv, then lint (ruff, mypy) and run the whole test suite
    python3 dev.py setup   only set up .venv (exact versions from requirements.lock)

Extra arguments go to the command run (`python3 dev.py test -k store -x`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".sublim-lock-hash"
UV_VERSION = "0.13.9"


def step(message: str) -> None:
    print(f"\033[1m==> {message}\033[0m", flush=True)


def run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True)


def lock_hash() -> str:
    digest = hashlib.sha256(LOCK.read_bytes())
    digest.update((ROOT / "pyproject.toml").read_bytes())
    return digest.hexdigest()


def setup() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Subliminal needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        step(f"creating {VENV.name}")
        venv.create(VENV, with_pip=True)
    if STAMP.exists() and STAMP.read_text() == lock_hash():
        return
    step("installing locked dependencies")
    run(BIN / "python", "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}")
    env_python = f"--python={BIN / 'python'}"
    run(BIN / "uv", "pip", "sync", "--quiet", env_python, LOCK)
    run(BIN / "uv", "pip", "install", "--quiet", env_python, "--no-deps", "-e", ".")
    STAMP.write_text(lock_hash())


def up(extra: list[str]) -> None:
    args = extra or ["--executor", "sublim.examples.hello:node", "--demo", "10"]
    run(BIN / "sublim", "up", *args)


def test(extra: list[str]) -> None:
    step("ruff")
    run(BIN / "ruff", "check", "src", "tests", "bench")
    step("mypy")
    run(BIN / "mypy")
    step("pytest")
    run(BIN / "pytest", *extra)


def main() -> None:
    command, extra = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("help", [])
    if command not in {"setup", "up", "test"}:
        print(__doc__)
        sys.exit(0 if command in {"help", "-h", "--help"} else 2)
    setup()
    try:
        {"setup": lambda _: None, "up": up, "test": test}[command](extra)
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
