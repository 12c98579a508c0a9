"""Every ``ocplan`` command the README and the guides show runs as written: a flag
renamed, a model id dropped from the catalog or a file moved would otherwise leave the
first commands a new user copies failing. Each page's commands run in order (a sweep
before the ``sweeps`` that reads its database), with the files they write (``--db``,
``--out``, ``--report``) in a scratch folder; optional parts written in brackets are left
out, and ``ocplan serve`` (a server that does not return) is not run here."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from clikit import run

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "validation"
PAGES = ("README.md", "docs/guide.md", "docs/serving.md")
#: Options whose value is a file the command writes.
WRITES = ("--db", "--out", "--report")
#: Commands that do not return (a server), run by their own tests.
NOT_RUN = ("serve",)


def documented(page: str) -> list[tuple[str, str]]:
    """(command, its comment) for each ``ocplan`` line of the page's bash blocks, lines
    joined where they continue, optional ``[...]`` parts left out."""
    text = (ROOT / page).read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            command, _, comment = line.partition(" #")
            command = re.sub(r"\s*\[[^\]]*\]", "", command).strip()
            if command.startswith("ocplan "):
                out.append((command, comment))
    return out


def test_the_pages_show_commands() -> None:
    """The parser finds what the pages show (so the test below cannot pass empty)."""
    counts = {page: len(documented(page)) for page in PAGES}
    assert all(n >= 5 for n in counts.values()), counts
    assert any("--local-batch 8" in c for c, _ in documented("docs/guide.md"))


@pytest.mark.skipif(not SHARED.exists(), reason="needs ../shared/validation")
@pytest.mark.parametrize("page", PAGES)
def test_every_documented_command_runs(page: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the pages' paths are the checkout's
    failed = []
    for command, comment in documented(page):
        args = shlex.split(command)[1:]
        if args[0] in NOT_RUN:
            continue
        for i, arg in enumerate(args[:-1]):
            if arg in WRITES:
                args[i + 1] = str(tmp_path / Path(args[i + 1]).name)
        rc, out, err = run(capsys, *args)
        # exit 1 is the answer "no" (docs/guide.md, exit codes) where the page says so
        allowed = (0, 1) if "exit 1" in comment else (0,)
        if rc not in allowed or "Traceback" in out + err:
            failed.append(f"{command} -> exit {rc}: {err.strip()[:300]}")
    assert not failed, "\n".join(failed)
