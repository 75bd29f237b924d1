"""``pip install .`` gives teams and ops a ``cip`` command that works from any folder.

The package is built and installed for real into a fresh virtual environment outside the repository: pip
runs pyproject.toml's build backend (setuptools) on a copy of the project's files and installs the wheel's
files and the ``cip`` entry-point script into the new venv. Only its dependencies are not downloaded: a
``.pth`` file makes the project's own pinned set (``.venv``, the versions the tests run with) visible to the
new venv, and the install runs with ``--no-deps --no-index``. So what is checked here is exactly what the
package adds (its modules, the shipped scenarios as package data, the console script), run from a folder
that holds no project file and with the repository off ``sys.path``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from rehearsal.scenario import DEFAULT_ACCOUNT_ID, DEFAULT_VM_ID, default_request
from tests.support import PROJECT_ROOT, VALID_SETTINGS

PACKAGES = ("cli", "shared", "handlers", "rehearsal", "emulator")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the project installed from a copy of its files; returns the venv's folder."""
    root = tmp_path_factory.mktemp("installed")
    source = root / "source"
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=PROJECT_ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (PROJECT_ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / name, source / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "project-pinned-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                             "--no-build-isolation", str(source)], capture_output=True, text=True, env=_clean_env(), cwd=root)
    assert result.returncode == 0, result.stderr
    return venv


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in VALID_SETTINGS and k not in ("PYTHONPATH", "NO_COLOR", "SERVICEBUS_NAMESPACE")}
    return {**env, **extra}


def cip(venv: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "cip"), *args], cwd=cwd, capture_output=True, text=True, env=_clean_env(**env))


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    folder = tmp_path / "a-team-folder"
    folder.mkdir()
    return folder


def test_given_the_installed_package_when_cip_runs_from_another_folder_then_it_is_the_installed_copy_with_every_command(installed, elsewhere):
    help_text = cip(installed, "--help", cwd=elsewhere)

    assert help_text.returncode == 0, help_text.stderr
    assert help_text.stdout.startswith("usage: cip ")
    for command in ("validate", "submit", "status", "images", "verify", "schema", "rehearse"):
        assert f"    {command} " in help_text.stdout
    where = subprocess.run([str(installed / "bin" / "python"), "-c", "import cli, shared; print(cli.__file__); print(shared.__file__)"],
                           cwd=elsewhere, capture_output=True, text=True, env=_clean_env(), check=True).stdout.split()
    assert all(Path(path).is_relative_to(installed) for path in where), where


def test_given_the_installed_package_then_it_holds_every_module_of_the_command_and_every_shipped_scenario(installed, elsewhere):
    # GIVEN the project's modules and scenarios
    site = next((installed / "lib").glob("python3*/site-packages"))
    wanted = {str(path.relative_to(PROJECT_ROOT)) for package in PACKAGES for path in (PROJECT_ROOT / package).rglob("*.py")
              if "__pycache__" not in path.parts}
    # THEN each is installed (a new package missing from pyproject.toml's list fails here)
    installed_files = {str(path.relative_to(site)) for package in PACKAGES for path in (site / package).rglob("*.py")}
    assert wanted <= installed_files, sorted(wanted - installed_files)
    assert (site / "function_app.py").is_file()
    # AND the installed command lists the same scenarios as the repository's examples/
    listed = cip(installed, "rehearse", "--list", "-o", "json", cwd=elsewhere)
    assert listed.returncode == 0, listed.stderr
    assert sorted(Path(item["file"]).name for item in json.loads(listed.stdout)) == sorted(p.name for p in (PROJECT_ROOT / "examples").glob("*.json"))


def test_given_request_files_when_cip_validates_them_outside_the_repository_then_it_says_valid_or_names_each_problem(installed, elsewhere):
    good = elsewhere / "good.json"
    good.write_text(json.dumps(default_request()))
    garbage = elsewhere / "garbage.json"
    garbage.write_text(json.dumps({**default_request(), "source": {"virtualMachineId": "garbage"}}))
    typo = elsewhere / "typo.json"
    body = default_request(resizeTimeout="25 minutes")
    body["pool"]["vmsize"] = body["pool"].pop("vmSize")
    typo.write_text(json.dumps(body))

    valid = cip(installed, "validate", "good.json", cwd=elsewhere)
    refused = cip(installed, "validate", "garbage.json", cwd=elsewhere)
    problems = cip(installed, "validate", "typo.json", cwd=elsewhere)
    outside = cip(installed, "validate", "good.json", cwd=elsewhere, ALLOWED_SCOPES=DEFAULT_ACCOUNT_ID)

    assert valid.returncode == 0 and valid.stdout.startswith("good.json: valid") and "scopes not checked" in valid.stdout
    assert refused.returncode == 2
    assert "source.virtualMachineId: is not a Microsoft.Compute/virtualMachines resource id" in refused.stdout
    assert problems.returncode == 2 and "typo.json: 3 problems" in problems.stdout
    assert "pool.vmsize: unknown field (did you mean vmSize?)" in problems.stdout and "pool.resizeTimeout: not a duration" in problems.stdout
    assert outside.returncode == 2 and f"source.virtualMachineId: {DEFAULT_VM_ID} is outside the allowed scopes" in outside.stdout
    assert "image.galleryId" in outside.stdout and "pool.batchAccountId" not in outside.stdout
