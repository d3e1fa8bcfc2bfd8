"""Replay in a fresh process and export to pytest, end to end with a tiny module in tmp_path."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from aurum_otel.cli import cli
from aurum_otel.forensics.capture import Capturer, Example, Side
from aurum_otel.forensics.replay import ReplayError, load_target
from aurum_otel.forensics.storage import FILE_NAME, FileSink
from tests.unit.forensics.support import Clock

MODULE = '''
from aurum_otel import migrated


@migrated("shop")
def price(item, quantity=1, *, currency="EUR"):
    return {{"amount": round(item["unit"] * quantity, 2), "currency": currency}}


@price.simplified
def _price_v2(item, quantity=1, *, currency="EUR"):
    {body}
'''
BUGGY = ('return {"amount": str(item["unit"] * quantity), '
         '"currency": currency if currency == "EUR" else currency.lower()}')
FIXED = 'return {"amount": round(item["unit"] * quantity, 2), "currency": currency}'
CRASHES = 'raise KeyError("unit")'


def write_module(folder: Path, body: str) -> None:
    (folder / "shopmod.py").write_text(textwrap.dedent(MODULE.format(body=body)))
    for cache in folder.glob("__pycache__/shopmod*"):
        cache.unlink()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder holding shopmod.py (buggy) and captured examples of two bugs."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(tmp_path, BUGGY)
    shopmod: Any = importlib.import_module("shopmod")  # the module the test just wrote

    sink = FileSink(Path(os.environ["AURUM_STATE_DIR"]) / FILE_NAME)
    capturer = Capturer(sink, synchronous=True, clock=Clock())
    legacy, simplified = shopmod.price.legacy, shopmod.price.simplified_implementation
    calls = [(({"unit": 2.5, "sku": b"\x01sku"}, 3), {}),
             (({"unit": 10.0, "sku": b"x"},), {"currency": "USD"}),
             (({"unit": 1.25, "sku": b"y"}, 2), {"currency": "EUR"})]
    for args, kwargs in calls:
        mine, theirs = legacy(*args, **kwargs), simplified(*args, **kwargs)
        result = shopmod.price.options.comparator(mine, theirs)
        capturer.record(Example("shop", "hybrid", 0, 100, args, kwargs, Side("legacy", mine),
                                Side("simplified", theirs), result.differences,
                                arg_names=("item", "quantity")))
    sys.modules.pop("shopmod")
    return tmp_path


def test_replay_reports_still_differs_then_fixed_after_the_fix(project: Path) -> None:
    signatures = json.loads(run("mismatches", "shop", "--json").output)["signatures"]
    assert len(signatures) == 2  # amount type (+ currency value when not EUR): two bugs
    before = run("replay", "shop", "--target", "shopmod:price")
    assert before.exit_code == 1, before.output
    assert before.output.count("differs") == 2
    assert "amount: float != str" in before.output

    write_module(project, FIXED)
    after = run("replay", "shop", "--target", "shopmod:price")
    assert after.exit_code == 0, after.output
    assert after.output.count("fixed") == 2

    one = signatures[0]["signature"]
    only = run("replay", "shop", "--signature", one, "--target", "shopmod:price")
    assert only.exit_code == 0 and one in only.output and only.output.count("fixed") == 1


def test_replay_says_when_an_implementation_now_errors(project: Path) -> None:
    write_module(project, CRASHES)
    result = run("replay", "shop", "--target", "shopmod:price")
    assert result.exit_code == 3, result.output
    assert "simplified now raises KeyError" in result.output


def test_replay_of_a_bad_target_says_what_to_change(project: Path) -> None:
    (project / "shopmod.py").write_text(
        (project / "shopmod.py").read_text() + "\nimport textwrap\n")
    result = run("replay", "shop", "--target", "shopmod:textwrap")
    assert result.exit_code == 3, result.output
    assert "shopmod:textwrap is not a @migrated function" in result.output


@pytest.mark.parametrize(("target", "message"), [
    ("nosuchmod:price", "cannot import 'nosuchmod'"),
    ("shopmod:nothing", "'shopmod' has no 'nothing'"),
    ("shopmod", "is not module:function"),
], ids=["module", "attribute", "no-colon"])
def test_a_bad_target_is_refused_with_what_to_change(project: Path, target: str,
                                                     message: str) -> None:
    with pytest.raises(ReplayError, match=message):
        load_target(target)


def pytest_on(path: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         str(path)], cwd=folder, capture_output=True, text=True, timeout=120, env=environment)


def test_the_exported_module_fails_until_the_implementations_agree(project: Path) -> None:
    exported = project / "test_shop_regressions.py"
    result = run("mismatches", "shop", "--export-pytest", str(exported), "--target",
                 "shopmod:price")
    assert result.exit_code == 0, result.output
    assert "2 case(s), one per signature" in result.output
    text = exported.read_text()
    compile(text, str(exported), "exec")
    assert "TARGET = 'shopmod:price'" in text

    failing = pytest_on(exported, project)
    assert failing.returncode == 1, failing.stdout
    assert "2 failed" in failing.stdout
    assert "amount: float != str" in failing.stdout

    write_module(project, FIXED)
    passing = pytest_on(exported, project)
    assert passing.returncode == 0, passing.stdout
    assert "2 passed" in passing.stdout
