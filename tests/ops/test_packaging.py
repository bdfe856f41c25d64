"""The lock files and the image: every install is pinned and hashed, the image runs as it should.

There is no container runtime in the test environment, so the Dockerfile is checked by reading it.
"""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENT = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock(name: str) -> dict[str, str]:
    """{package: version} of a lock file, after checking that every entry carries a hash."""
    text = (ROOT / name).read_text()
    entries = re.split(r"\n(?=\S)", text)
    pins: dict[str, str] = {}
    for entry in entries:
        match = REQUIREMENT.match(entry)
        if match is None:
            assert entry.startswith("#") or not entry.strip(), f"{name}: unexpected {entry!r}"
            continue
        assert "--hash=sha256:" in entry, f"{name}: {match.group(1)} has no hash"
        pins[_canonical(match.group(1))] = match.group(2)
    return pins


def _direct(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for requirement in requirements:
        match = re.match(r"([A-Za-z0-9._-]+)(\[[^]]*\])?==([^;\s]+)", requirement)
        assert match, f"not pinned exactly: {requirement}"
        pins[_canonical(match.group(1))] = match.group(3)
    return pins


def test_the_locks_pin_every_direct_dependency_at_its_pyproject_version_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, dev = _lock("requirements.lock"), _lock("requirements-dev.lock")
    for name, version in _direct(project["dependencies"]).items():
        assert runtime.get(name) == version, name
    for name, version in _direct(project["optional-dependencies"]["dev"]).items():
        assert dev.get(name) == version, name
    # The tests run exactly the versions the image ships, transitive ones included.
    assert {name: dev.get(name) for name in runtime} == runtime
    assert _lock("requirements-build.lock")["setuptools"] == dev["setuptools"]


def test_dev_script_installs_from_the_locks_with_hashes_and_the_project_without_deps() -> None:
    script = (ROOT / "scripts" / "dev.py").read_text()
    assert '"--require-hashes", "-r", BUILD_LOCK' in script
    assert '"--require-hashes", "--no-deps", "-r", lock' in script
    assert '"--no-deps", "--no-build-isolation", "-e", "."' in script
    # Nothing installs the project with its dependencies resolved afresh.
    assert 'install", "--quiet", "-e"' not in script


def _stages(dockerfile: str) -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), grouped by stage."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    lines = [line.strip() for line in joined.splitlines()]
    stages: list[list[str]] = []
    for line in lines:
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_dockerfile_builds_from_the_lock_and_runs_read_only_code_as_a_non_root_user() -> None:
    stages = _stages((ROOT / "Dockerfile").read_text())
    assert len(stages) >= 2, "multi-stage build"
    build = "\n".join(line for stage in stages[:-1] for line in stage)
    final = stages[-1]
    assert "--require-hashes --no-deps -r requirements.lock" in build
    assert "--require-hashes -r requirements-build.lock" in build
    assert "pip wheel --no-deps" in build
    assert "install --no-deps /wheels/" in build
    every_line = "\n".join(line for stage in stages for line in stage)
    assert not re.search(r"pip install[^\n]*\s-e\s", every_line), "editable"

    def instructions(keyword: str) -> list[str]:
        return [line[len(keyword) :].strip() for line in final if line.startswith(keyword + " ")]

    (user,) = instructions("USER")
    assert user not in ("root", "0")
    # The code comes from the build stage as root's; nothing hands it to the runtime user.
    copies = instructions("COPY")
    assert copies == ["--from=build /opt/pengingat-spi /opt/pengingat-spi"]
    assert not any("/opt/pengingat-spi" in run and "chown" in run for run in instructions("RUN"))

    env = " ".join(instructions("ENV"))
    data_dir = re.search(r"SPI_DATA_DIR=(\S+)", env)
    assert data_dir
    assert f'VOLUME ["{data_dir.group(1)}"]' in final
    assert "SPI_ENV=production" in env
    (healthcheck,) = instructions("HEALTHCHECK")
    assert "/readyz" in healthcheck
    assert "os.environ.get('SPI_PORT'" in healthcheck
    assert instructions("CMD") == ['["spi-reminder", "serve"]']
