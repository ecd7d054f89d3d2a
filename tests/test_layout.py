"""The package's layers hold: import-linter's contracts (pyproject.toml) are kept.

The contracts say what may import what: the command line on top, then the drivers and the
Python API, the per-file core, and below it the pieces it is built from; model files and the
timeline merge import nothing of vidcls; the video side knows no model; writers know no run;
only network.py imports huggingface_hub; no cycles. A change that breaks one fails here, with
import-linter's report of the offending import chain.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    command = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    return subprocess.run(
        [command, "--no-cache", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_every_import_contract_is_kept() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_forbidden_import_breaks_a_contract(tmp_path: Path) -> None:
    # the same contracts on a copy of the package in which the timeline merge imports the
    # registry: the check must see it (it is not vacuous)
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "vidcls", copy / "vidcls")
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    segments = copy / "vidcls" / "segments.py"
    segments.write_text(segments.read_text() + "\nfrom . import registry  # noqa\n")
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command;"
         " sys.exit(lint_imports_command())", "--no-cache"],
        cwd=copy, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(copy), "PATH": str(Path(sys.executable).parent)},
    )  # fmt: skip
    assert result.returncode != 0, result.stdout
    assert "Model files and the timeline merge import nothing of vidcls BROKEN" in result.stdout


@pytest.mark.parametrize("argv", [["--help"], ["predict", "--help"], ["models", "--json"]])
def test_the_light_commands_import_no_torch(argv: list[str]) -> None:
    code = (
        "import sys\n"
        f"sys.argv = ['vidcls', *{argv!r}]\n"
        "from vidcls.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'av', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_shared_code_is_imported_never_path_hacked() -> None:
    """Tests, bench/ and the training scripts share code through the vidcls_dev package (dev/);
    none of them edits sys.path to reach a sibling's file."""
    import vidcls_dev

    assert Path(vidcls_dev.__file__).resolve().is_relative_to(ROOT / "dev")
    edit = re.compile(r"^\s*sys\.path\.(insert|append)\(")
    hacks = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("vidcls", "tests", "bench", "dev")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if edit.match(line)
    ]
    assert hacks == []
