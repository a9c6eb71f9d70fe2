"""docs/plugins.md is run as written: its plugin, its commands, their output and its tests."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"


def blocks() -> list[tuple[str, str]]:
    """Every fenced block of the guide, as (language, text), in order."""
    return re.findall(r"```(\w+)\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)


def eventscope(cwd: Path, line: str) -> subprocess.CompletedProcess[str]:
    words = shlex.split(line)
    assert words[0] == "eventscope"
    env = {**os.environ, "EVENTSCOPE_PLUGINS": ""}
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *words[1:]],
        cwd=cwd, capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def test_the_plugin_guide_runs_as_written(tmp_path: Path) -> None:
    found = blocks()
    languages = [language for language, _ in found]
    assert languages == ["sh", "python", "sh", "json", "sh", "json", "sh", "python", "toml"]
    (_, mkdir), (_, plugin), (_, listing), (_, listed), (_, session), (_, replayed), \
        (_, refused), (_, tests), _ = found  # fmt: skip

    assert mkdir.strip() == "mkdir my_plugins"
    (tmp_path / "my_plugins").mkdir()
    (tmp_path / "my_plugins" / "bank.py").write_text(plugin)

    result = eventscope(tmp_path, listing.strip())
    assert result.returncode == 0, result.stderr
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert orjson.loads(listed) in lines

    outputs = []
    for line in session.strip().splitlines():
        result = eventscope(tmp_path, line)
        assert result.returncode == 0, (line, result.stderr)
        outputs.append(result.stdout)
    assert orjson.loads(outputs[-1]) == orjson.loads(replayed)

    command, comment = refused.strip().split("\n")
    result = eventscope(tmp_path, command)
    assert result.returncode == 4
    assert comment.startswith("# " + result.stderr.strip())

    (tmp_path / "test_bank.py").write_text(tests)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path / 'my_plugins'}{os.pathsep}{ROOT}"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_bank.py"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout
