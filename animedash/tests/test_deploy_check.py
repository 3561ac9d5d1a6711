from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "k9#Vf2!qLx7$Rw0@Zp4^Tn8&Hs3*Jm6(Bc1)Yd5-Ge9+Ua2=Oi7~El4",
    "ALLOWED_HOSTS": "animedash.example.org",
}


def _ignored(relative: str, rules: list[tuple[bool, str]]) -> bool:
    """Docker's rule: the last pattern that matches the path (or one of its parents) decides."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for negated, pattern in rules:
        if any(fnmatch.fnmatch(c, pattern) or fnmatch.fnmatch(c, pattern.removeprefix("**/")) for c in candidates):
            verdict = not negated
    return verdict


def _image_tree(destination: Path) -> Path:
    """The files `COPY . /app` puts in the image: the checkout minus what .dockerignore leaves out."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), line.removeprefix("!")))
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for relative in tracked.splitlines():
        if not _ignored(relative, rules) and (ROOT / relative).is_file():
            (destination / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, destination / relative)
    return destination


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory) -> Path:
    return _image_tree(tmp_path_factory.mktemp("image"))


def _manage(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"SECURE_SSL_REDIRECT", "DEBUG", "DEVTOOLS"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=cwd,
        env={**env, **PRODUCTION_ENV, "COVERAGE_PROCESS_START": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_image_ships_no_devtools(image_tree):
    assert (image_tree / "manage.py").exists()
    assert (image_tree / "snapshots" / "models.py").exists()
    assert (image_tree / "deploy" / "start-web").exists()
    assert not (image_tree / "devtools").exists()
    assert not (image_tree / "conftest.py").exists()
    assert not list(image_tree.glob("*/tests"))
    for package in ("time-machine", "psutil", "pytest"):
        assert package not in (ROOT / "requirements.txt").read_text()


def test_check_deploy_is_clean_under_production_settings_without_devtools(image_tree):
    result = _manage(image_tree, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    # Every product module imports without devtools on disk (a URLconf or app importing it would fail).
    commands = _manage(image_tree, "help", "--commands")
    assert commands.returncode == 0, commands.stderr
    assert "etl" in commands.stdout.split()
    assert "seed_demo" not in commands.stdout.split()
