"""The docs say what the code does."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_configuration_page_lists_every_setting_as_the_code_has_it() -> None:
    generator = runpy.run_path(str(ROOT / "scripts" / "gen_settings_doc.py"))
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert page == generator["render"](), "run scripts/gen_settings_doc.py"


def test_the_readme_gives_the_two_commands_that_dev_py_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "python3 dev.py up" in readme
    assert "python3 dev.py test" in readme
    assert "python3 dev.py test" in (ROOT / ".ci" / "run").read_text()


def test_every_public_name_of_the_package_resolves() -> None:
    import sublim

    assert all(getattr(sublim, name) is not None for name in sublim.__all__)


def test_the_public_names_include_the_executor_interface_of_the_design() -> None:
    import sublim

    assert {"Task", "TaskResult", "TaskStatus", "ExecutionNodeBuilder"} <= set(sublim.__all__)
