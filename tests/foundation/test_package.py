"""The Function App package: .funcignore ships only what function_app imports, and that is enough.

The file list is built with gitignore semantics (what Core Tools and azd apply to .funcignore),
copied to an empty folder, and ``function_app`` is imported from that folder alone by a fresh
interpreter that cannot see the project: every registered function must index.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pathspec

from tests.support import PROJECT_ROOT

NEVER_SHIPPED = (".venv", ".venv-checkov", "node_modules", "tests", "emulator", "rehearsal", "cli", "bench", "examples", "infra", "scripts", ".git")
# Folders the walk skips, with the .venv* ones: the allow-list ships nothing from them, and walking them costs seconds.
NEVER_WALKED = (".git", "node_modules")


@cache
def package_files(root: Path = PROJECT_ROOT) -> tuple[str, ...]:
    spec = pathspec.GitIgnoreSpec.from_lines((root / ".funcignore").read_text().splitlines())
    files = []
    for folder, subfolders, names in os.walk(root):
        here = Path(folder)
        subfolders[:] = [name for name in subfolders if here != root or not (name in NEVER_WALKED or name.startswith(".venv"))]
        for name in names:
            relative = (here / name).relative_to(root).as_posix()
            if not spec.match_file(relative):
                files.append(relative)
    return tuple(sorted(files))


def test_given_the_funcignore_when_the_package_is_listed_then_it_holds_only_the_app():
    files = package_files()
    assert {"function_app.py", "host.json", "requirements.txt"} <= set(files)
    assert any(f.startswith("handlers/") for f in files) and any(f.startswith("shared/") for f in files)
    shipped_tops = {f.split("/", 1)[0] for f in files}
    assert shipped_tops == {"function_app.py", "host.json", "requirements.txt", "handlers", "shared"}, shipped_tops
    assert not [f for f in files if f.split("/", 1)[0] in NEVER_SHIPPED or "__pycache__" in f]


def test_given_the_package_alone_when_function_app_is_imported_then_every_function_indexes(tmp_path):
    for relative in package_files():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / relative, tmp_path / relative)
    probe = (
        "import sys, function_app\n"
        "names = sorted(f.get_function_name() for f in function_app.app.get_functions())\n"
        "local = sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, '__file__', None) and m.__file__.startswith(sys.argv[1])})\n"
        "print(','.join(names)); print(len(local))\n"
        "assert not any(name in sys.modules for name in ('emulator', 'cli', 'rehearsal', 'bench', 'tests'))\n"
    )
    # -P: the working directory (the package) is the only place project modules can come from.
    result = subprocess.run([sys.executable, "-P", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); exec({probe!r})", str(tmp_path)],
                            cwd=tmp_path, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    functions = result.stdout.splitlines()[0].split(",")
    assert {"pool_requests", "resource_events", "pool_guard_sweep", "pool_checks"} <= set(functions), functions


def test_given_the_local_settings_example_when_read_then_it_sets_every_app_setting():
    import json

    from shared.settings import ALL_SETTING_NAMES

    values = json.loads((PROJECT_ROOT / "local.settings.json.example").read_text())["Values"]
    assert set(ALL_SETTING_NAMES) <= set(values), sorted(set(ALL_SETTING_NAMES) - set(values))
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python" and values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
