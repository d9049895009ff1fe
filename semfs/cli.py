"""The ``semfs`` command: parsing and messages only; the work is in the library."""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator, Optional

import click

from . import __version__
from .core import mounts
from .core.errors import SemfsError


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn library errors into a one-line message and exit status 1."""
    try:
        yield
    except SemfsError as e:
        raise click.ClickException(str(e)) from None


@click.group()
@click.version_option(__version__, prog_name="semfs")
def cli() -> None:
    """semfs: mount a folder and find its files by meaning."""


@cli.command()
@click.argument("backing")
@click.argument("mountpoint")
@click.option("-f", "--foreground", is_flag=True, help="Serve in this process until unmounted (for debugging).")
@click.option(
    "--state-dir",
    envvar="SEMFS_STATE_DIR",
    help="Where the index and logs live (default: ~/.local/share/semfs/<hash of BACKING>).",
)
@click.option("--allow-other", is_flag=True, help="Let other users use the mount (needs root or user_allow_other).")
@click.option("--debug", is_flag=True, help="Log every FUSE request (with --foreground).")
def mount(backing: str, mountpoint: str, foreground: bool, state_dir: Optional[str], allow_other: bool, debug: bool) -> None:
    """Mount BACKING at MOUNTPOINT: an exact mirror, kept indexed."""
    from .fs import daemon

    with _errors():
        spec = mounts.prepare_mount(backing, mountpoint, state_dir, allow_other)
        if foreground:
            logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="semfs: %(message)s")
            daemon.serve(spec, debug=debug)
            return
        pid = daemon.start_background(spec)
    click.echo(f"mounted {spec.backing} at {spec.mountpoint} (pid {pid})")
    click.echo(f"state dir: {spec.state_dir}")


@cli.command()
@click.argument("mountpoint")
def unmount(mountpoint: str) -> None:
    """Unmount MOUNTPOINT (also clears a mount left by a killed daemon)."""
    with _errors():
        click.echo(mounts.unmount(mountpoint))


@cli.command()
@click.argument("mountpoint", required=False)
def status(mountpoint: Optional[str]) -> None:
    """Show MOUNTPOINT (or every semfs mount): state, backing folder, pid, state dir."""
    with _errors():
        found = mounts.status(mountpoint)
    if not found:
        click.echo("no semfs mounts")
        return
    for st in found:
        click.echo(f"{st.mountpoint}: {st.state}")
        if st.record is not None:
            click.echo(f"  backing:   {st.record.backing}")
            click.echo(f"  pid:       {st.record.pid}")
            click.echo(f"  state dir: {st.record.state_dir}")
