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
