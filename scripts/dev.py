#!/usr/bin/env python3
"""The commands of the README, needing nothing but python3.

python3 scripts/dev.py serve   # install into .venv, migrate, run the embedded default
python3 scripts/dev.py test    # install into .venv, then ruff, mypy, import contracts and the suite
python3 scripts/dev.py lock    # regenerate the hashed lock files from pyproject.toml

Installs come from the lock files only, every package pinned and checked against its hash
(`pip install --require-hashes`); the project itself is then installed with `--no-deps`, so
nothing unlocked is ever pulled in. `lock` is the one command that resolves anew.
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"

# setuptools, to build the project itself without fetching an unhashed build backend
BUILD_LOCK = ROOT / "requirements-build.lock"
# every runtime dependency (what the image installs)
RUNTIME_LOCK = ROOT / "requirements.lock"
# the runtime dependencies plus the dev/test extra, at the same versions
DEV_LOCK = ROOT / "requirements-dev.lock"
LOCKS = {"": RUNTIME_LOCK, "dev": DEV_LOCK}


def run(*args: str | Path) -> None:
    """Run a command in the project root; stop with its exit code if it fails."""
    code = subprocess.call([str(a) for a in args], cwd=ROOT)
    if code != 0:
        sys.exit(code)


def ensure_venv(extras: str) -> None:
    """Create .venv and install from the lock files, again only when a lock file changed."""
    if not (BIN / "python").exists():
        venv.create(VENV, with_pip=True)
    lock = LOCKS[extras]
    digest = hashlib.sha256(
        BUILD_LOCK.read_bytes() + lock.read_bytes() + extras.encode()
    ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    pip = (BIN / "python", "-m", "pip", "install", "--quiet")
    run(*pip, "--require-hashes", "-r", BUILD_LOCK)
    # --no-deps: the lock already holds every dependency, each with its hash.
    run(*pip, "--require-hashes", "--no-deps", "-r", lock)
    run(*pip, "--no-deps", "--no-build-isolation", "-e", ".")
    STAMP.write_text(digest)


def lock(options: list[str]) -> None:
    """Regenerate the lock files with pip-tools (pinned in the dev extra).

    Pins already in a lock file are kept while pyproject.toml allows them; pass `--upgrade` to
    move every transitive dependency to its newest release too.
    """
    ensure_venv("dev")
    build, runtime, dev = (path.name for path in (BUILD_LOCK, RUNTIME_LOCK, DEV_LOCK))
    compile_ = (
        BIN / "pip-compile",
        "--quiet",
        "--generate-hashes",
        "--strip-extras",
        "--allow-unsafe",
        "--no-emit-index-url",
        "--no-emit-find-links",
        *options,
    )
    run(*compile_, "--only-build-deps", "--all-build-deps", "-o", build, "pyproject.toml")
    run(*compile_, "-o", runtime, "pyproject.toml")
    # Constrained by the other two, so the tests run the versions the image ships.
    run(*compile_, "--extra", "dev", "-c", build, "-c", runtime, "-o", dev, "pyproject.toml")
    print("lock files written; commit them together with pyproject.toml")


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    rest = sys.argv[2:]
    if command == "serve":
        ensure_venv("dev")
        os.execv(BIN / "spi-reminder", [str(BIN / "spi-reminder"), "serve", *rest])
    elif command == "test":
        ensure_venv("dev")
        run(BIN / "ruff", "check", ".")
        run(BIN / "ruff", "format", "--check", ".")
        run(BIN / "mypy")
        run(BIN / "lint-imports")
        run(BIN / "python", "-m", "pytest", *rest)
    elif command == "lock":
        lock(rest)
    else:
        print(__doc__)
        sys.exit(0 if command == "help" else 2)


if __name__ == "__main__":
    main()
