"""The Function App package: exactly the files the app needs, by azd's rules and by git's, and enough to index.

``azd deploy`` zips the service folder with its own reading of ``.funcignore`` (denormal/go-gitignore,
ported in tests/foundation/go_gitignore.py with its own tests); Core Tools and a reader of the file expect
git's rules. The package is listed both ways: by the port, and by git itself (``git ls-files --others
--exclude-from=.funcignore`` against an empty repository, so every file on disk counts, ignored
folders are not entered). Both must be :data:`PACKAGE`, and ``function_app`` imported from a copy of
just those files, in a fresh interpreter that cannot see the project, must index every function.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.foundation.go_gitignore import GitIgnore, azd_package
from tests.support import PROJECT_ROOT

# What the package holds, file by file: a new module under handlers/ or shared/ is added here on purpose.
PACKAGE = [
    "function_app.py",
    "handlers/__init__.py",
    "handlers/guard_timer.py",
    "handlers/pool_checks_queue.py",
    "handlers/pool_requests_queue.py",
    "handlers/resource_events_grid.py",
    "host.json",
    "requirements.txt",
    "shared/__init__.py",
    "shared/alerts.py",
    "shared/arm/__init__.py",
    "shared/arm/events.py",
    "shared/arm/ids.py",
    "shared/arm/pools.py",
    "shared/arm/values.py",
    "shared/arm/views.py",
    "shared/bootstrap.py",
    "shared/clients.py",
    "shared/errors.py",
    "shared/eventfacts/__init__.py",
    "shared/eventfacts/findings.py",
    "shared/eventfacts/probe.py",
    "shared/gateway/__init__.py",
    "shared/gateway/batch.py",
    "shared/gateway/compute.py",
    "shared/gateway/failures.py",
    "shared/gateway/graph.py",
    "shared/gateway/locks.py",
    "shared/gateway/monitor.py",
    "shared/gateway/protocol.py",
    "shared/gateway/sdk.py",
    "shared/guard/__init__.py",
    "shared/guard/adoption.py",
    "shared/guard/rules.py",
    "shared/guard/sweep.py",
    "shared/intake/__init__.py",
    "shared/intake/authorization.py",
    "shared/intake/prerequisites.py",
    "shared/intake/receive.py",
    "shared/intake/sizes.py",
    "shared/intake/sources.py",
    "shared/intake/target.py",
    "shared/messaging.py",
    "shared/model/__init__.py",
    "shared/model/plan.py",
    "shared/model/request.py",
    "shared/naming.py",
    "shared/pipeline/__init__.py",
    "shared/pipeline/reconcile.py",
    "shared/pipeline/routing.py",
    "shared/pipeline/stages.py",
    "shared/protection/__init__.py",
    "shared/protection/alerts.py",
    "shared/protection/audit.py",
    "shared/protection/lineage.py",
    "shared/protection/locks.py",
    "shared/refresh/__init__.py",
    "shared/refresh/admission.py",
    "shared/refresh/fit.py",
    "shared/refresh/mover.py",
    "shared/refresh/state.py",
    "shared/settings.py",
    "shared/store/__init__.py",
    "shared/store/ledger.py",
    "shared/store/memory.py",
    "shared/store/progress.py",
    "shared/store/records.py",
    "shared/store/tables.py",
]

# The allow-list .funcignore had before: right under git's rules, three files under azd's.
ANCHORED_STAR_ALLOW_LIST = "/*\n!/function_app.py\n!/host.json\n!/requirements.txt\n!/handlers/\n!/shared/\n__pycache__/\n*.pyc\n"


def git_package(root: Path, tmp_path: Path) -> list[str]:
    """The files git's ignore rules keep, with .funcignore as the only exclude file."""
    repository = tmp_path / "empty-repository"
    subprocess.run(["git", "init", "--quiet", str(repository)], check=True, capture_output=True)
    listed = subprocess.run(
        ["git", f"--git-dir={repository / '.git'}", f"--work-tree={root}", "ls-files", "--others", f"--exclude-from={root / '.funcignore'}"],
        check=True, capture_output=True, text=True,
    )
    return sorted(listed.stdout.splitlines())


def test_given_the_funcignore_when_azd_packages_the_app_then_it_ships_exactly_the_app():
    assert sorted(azd_package(PROJECT_ROOT)) == PACKAGE


def test_given_the_funcignore_when_read_by_git_then_it_keeps_exactly_the_same_files(tmp_path):
    assert git_package(PROJECT_ROOT, tmp_path) == PACKAGE


def test_given_the_funcignore_when_parsed_by_azd_then_no_line_is_rejected():
    rules = GitIgnore((PROJECT_ROOT / ".funcignore").read_text())
    assert rules.errors == [] and rules.patterns


def test_given_the_old_anchored_allow_list_when_azd_packages_then_only_three_files_ship_while_git_keeps_all(tmp_path):
    # What the first deploy would have uploaded: function_app.py could not import handlers.
    (tmp_path / "app").mkdir()
    for relative in PACKAGE:
        (tmp_path / "app" / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "app" / relative).write_text("")
    (tmp_path / "app" / ".funcignore").write_text(ANCHORED_STAR_ALLOW_LIST)
    assert azd_package(tmp_path / "app") == ["function_app.py", "host.json", "requirements.txt"]
    assert git_package(tmp_path / "app", tmp_path) == PACKAGE


def test_given_the_package_alone_when_function_app_is_imported_then_every_function_indexes(tmp_path):
    import function_app
    from rehearsal.host import indexed_functions

    expected = sorted(indexed_functions(function_app.app))
    package = tmp_path / "package"
    for relative in azd_package(PROJECT_ROOT):
        (package / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / relative, package / relative)
    probe = (
        "import sys, function_app\n"
        "print(','.join(sorted(f.get_function_name() for f in function_app.app.get_functions())))\n"
        "assert not any(name in sys.modules for name in ('emulator', 'cli', 'rehearsal', 'bench', 'tests'))\n"
        "assert all(m.__file__.startswith(sys.argv[1]) for n, m in sys.modules.items() if n.split('.')[0] in ('shared', 'handlers', 'function_app'))\n"
    )
    # -P: the working directory (the package) is the only place project modules can come from.
    result = subprocess.run([sys.executable, "-P", "-c", f"import sys; sys.path.insert(0, {str(package)!r}); exec({probe!r})", str(package)],
                            cwd=package, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [",".join(expected)]
    assert {"pool_requests", "resource_events", "pool_guard_sweep", "pool_checks"} <= set(expected)


def test_given_the_local_settings_example_when_read_then_it_sets_every_app_setting():
    import json

    from shared.settings import ALL_SETTING_NAMES

    values = json.loads((PROJECT_ROOT / "local.settings.json.example").read_text())["Values"]
    assert set(ALL_SETTING_NAMES) <= set(values), sorted(set(ALL_SETTING_NAMES) - set(values))
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python" and values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
