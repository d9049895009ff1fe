"""The README's list of mount options is the command's own: checked against click."""

from __future__ import annotations

import re
from pathlib import Path

from semfs.cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_names_every_mount_option_and_no_other():
    text = README.read_text()
    section = text.split("Options of `semfs mount`:", 1)[1].split("\nErrors are one line", 1)[0]
    documented = set(re.findall(r"--[a-z][a-z-]*", section))
    options = {o for p in cli.commands["mount"].params for o in p.opts if o.startswith("--")}
    assert documented == options, f"README only: {documented - options}; click only: {options - documented}"


def test_readme_commands_exist():
    text = README.read_text()
    blocks = "\n".join(re.findall(r"```sh\n(.*?)```", text, re.S))  # the commands shown, not the prose
    named = set(re.findall(r"^semfs ([a-z]+)", blocks, re.M))
    assert named and named <= set(cli.commands), named - set(cli.commands)


def test_readme_layout_names_every_module():
    """Each module of semfs/ is named in the Layout, under the bullet of its own folder."""
    layout = README.read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    bullets = re.split(r"\n- ", layout)
    package = README.parent / "semfs"
    missing = []
    for path in sorted(package.rglob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        rel = path.relative_to(package.parent).as_posix()  # semfs/core/query/search.py
        folder = rel.rsplit("/", 1)[0] + "/"
        top = "semfs/" + rel.split("/")[1] + "/" if rel.count("/") > 1 else folder
        if f"`{rel}`" in layout:
            continue
        mine = [b for b in bullets if b.startswith((f"`{folder}`", f"`{top}`")) or f"`{rel.rsplit('/', 1)[0]}" in b]
        if not any(f"`{path.name}`" in b for b in mine):
            missing.append(rel)
    assert not missing, f"modules the README's Layout does not name: {missing}"
