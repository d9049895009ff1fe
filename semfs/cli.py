"""The ``semfs`` command: parsing and messages only; the work is in the library."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

import click

from . import __version__
from .core import mounts
from .errors import SemfsError, message
from .fs.virtual import kinds


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn library errors into a one-line message and exit status 1."""
    try:
        yield
    except (SemfsError, PermissionError, sqlite3.DatabaseError) as e:
        raise click.ClickException(message(e) or str(e)) from None


def state_dir_option(help: str = "Where the index lives (default: as for mount)."):
    return click.option("--state-dir", envvar="SEMFS_STATE_DIR", help=help)


def index_options(f=None, *, required: bool = False):
    """--index and --folder: where the index lives (recorded in the state dir for later commands);
    ``required`` for a command that has no state dir to find them in (``semfs worker``)."""

    def add(f):
        f = click.option(
            "--folder",
            "index_folder",
            envvar="SEMFS_INDEX_FOLDER",
            required=required,
            help="The folder's name in a PostgreSQL index; mounts of one share give the same "
            "(default: BACKING's name).",
        )(f)
        return click.option(
            "--index",
            "index_url",
            envvar="SEMFS_INDEX_URL",
            required=required,
            help="postgresql://... to share the index (password in ~/.pgpass or PGPASSWORD), or 'embedded'.",
        )(f)

    return add(f) if f is not None else add


def virtual_root_options(f):
    """--<kind>-root for every kind of virtual folder (fs.virtual.kinds), passed on as ``roots``
    (kind -> name)."""
    import functools

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        kwargs["roots"] = {k.name: kwargs.pop(f"{k.name}_root") for k in kinds.KINDS}
        return f(*args, **kwargs)

    for k in reversed(kinds.KINDS):
        opt = click.option(
            f"--{k.name}-root", default=k.name, show_default=True, help=f"Name of the virtual folder of {k.holds}."
        )
        wrapper = opt(wrapper)
    return wrapper


def _echo_hits(hits, as_json: bool, snippets: bool, extra: Optional[dict] = None) -> None:
    """Ranked files (core Hits): a JSON object per line (``Match.row``: path, score, snippet,
    passages with line numbers, the copies listed with it; and ``extra``), or score and path (and
    the snippet below, with ``snippets``)."""
    from .core.query.queries import matches

    for m in matches(hits):  # its score as .results.json gives it: the probability, where there is one
        if as_json:
            click.echo(json.dumps({**m.row(), **(extra or {})}, ensure_ascii=False))
        else:
            # files of identical content, and of the same text but for a few lines, listed once
            copies = f"  (and {_many(len(m.also) + len(m.alike), 'identical file')})" if m.also or m.alike else ""
            click.echo(f"{m.score:.3f}  {m.path}{copies}")
            if snippets:
                click.echo(f"       {m.snippet}")


backing_option = click.option("--backing", help="The backing folder PATH belongs to (default: found from the mounts).")


class Size(click.ParamType):
    """A byte count: 1048576, 500K, 200M, 1.5G (powers of 1024)."""

    name = "size"
    _UNITS = {
        "": 1,
        "B": 1,
        "K": 1 << 10,
        "KB": 1 << 10,
        "M": 1 << 20,
        "MB": 1 << 20,
        "G": 1 << 30,
        "GB": 1 << 30,
        "T": 1 << 40,
        "TB": 1 << 40,
    }

    def convert(self, value, param, ctx) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().upper().replace("IB", "B")
        num = text.rstrip("KMGTB")
        try:
            n = float(num) * self._UNITS[text[len(num) :]]
        except (ValueError, KeyError):
            self.fail(f"not a size: {value!r} (e.g. 500M, 2G)", param, ctx)
        if n < 0:
            self.fail(f"a size cannot be negative: {value!r}", param, ctx)
        return int(n)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


class _Stderr(logging.StreamHandler):
    """Log lines to whatever ``sys.stderr`` is when they come (click's test runner swaps it)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


@click.group()
@click.version_option(__version__, prog_name="semfs")
def cli() -> None:
    """semfs: mount a folder and find its files by meaning."""
    root = logging.getLogger()
    if not any(isinstance(h, _Stderr) for h in root.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("semfs: %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.WARNING)


@cli.command()
@click.argument("backing")
@click.argument("mountpoint")
@click.option("-f", "--foreground", is_flag=True, help="Serve in this process until unmounted (for debugging).")
@state_dir_option("Where the index and logs live (default: ~/.local/share/semfs/<hash of BACKING>).")
@click.option("--allow-other", is_flag=True, help="Let other users use the mount (needs root or user_allow_other).")
@click.option("--debug", is_flag=True, help="Log every FUSE request (with --foreground).")
@click.option("--no-index", is_flag=True, help="Mirror only: no index, no virtual folders.")
@virtual_root_options
@click.option(
    "--llm",
    "llm",
    default="default",
    show_default=True,
    envvar="SEMFS_LLM",
    help="GGUF model for summaries and change notes: a path, 'default' (the bundled gemma-3-270m) or 'off'.",
)
@click.option("--no-llm", is_flag=True, help="No model: summaries show a file's opening, change notes a diff stat.")
@click.option("--no-versions", is_flag=True, help="Do not keep the content that changes overwrite or delete.")
@index_options
def mount(
    backing: str,
    mountpoint: str,
    foreground: bool,
    state_dir: Optional[str],
    allow_other: bool,
    debug: bool,
    no_index: bool,
    roots: dict[str, str],
    llm: str,
    no_llm: bool,
    no_versions: bool,
    index_url: Optional[str],
    index_folder: Optional[str],
) -> None:
    """Mount BACKING at MOUNTPOINT: an exact mirror, kept indexed."""
    from .fs import daemon

    with _errors():
        spec = mounts.prepare_mount(
            backing,
            mountpoint,
            state_dir,
            allow_other,
            index=not no_index,
            roots=roots,
            llm="off" if no_llm else llm,
            versions=not no_versions,
            index_url=index_url,
            index_folder=index_folder,
        )
        for kind in kinds.shown(spec.index, spec.versions):
            name = spec.roots[kind.name]
            if os.path.lexists(spec.backing / name):
                click.echo(
                    f"note: {spec.backing / name} is hidden in the mount by the virtual folder {name}/ "
                    f"(choose another name with --{kind.name}-root)",
                    err=True,
                )
        if foreground:
            logging.getLogger().setLevel(logging.DEBUG if debug else logging.INFO)
            daemon.serve(spec, debug=debug)
            return
        pid = daemon.start_background(spec)
    click.echo(f"mounted {spec.backing} at {spec.mountpoint} (pid {pid})")
    click.echo(f"state dir: {spec.state_dir}")


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("backing")
@click.argument("mountpoint")
@click.argument("mount_options", nargs=-1, type=click.UNPROCESSED)
def enable(backing: str, mountpoint: str, mount_options: tuple[str, ...]) -> None:
    """Mount BACKING at MOUNTPOINT at every login (a systemd user unit); MOUNT_OPTIONS as for mount."""
    from .core import autostart

    # checked as `semfs mount` checks them, before anything is written
    mount.make_context("mount", [*mount_options, backing, mountpoint])
    with _errors():
        path = autostart.enable(Path(backing), Path(mountpoint), mount_options)
    click.echo(f"enabled {path}: {backing} is mounted at {mountpoint} at every login")
    click.echo(f"(now too; `semfs disable {mountpoint}` stops it)")


@cli.command()
@click.argument("mountpoint")
def disable(mountpoint: str) -> None:
    """Stop mounting MOUNTPOINT at login (and unmount it): the unit `semfs enable` wrote goes."""
    from .core import autostart

    with _errors():
        path = autostart.disable(Path(mountpoint))
    click.echo(f"disabled and removed {path}")


@cli.command()
@click.argument("mountpoint")
def unmount(mountpoint: str) -> None:
    """Unmount MOUNTPOINT (also clears a mount left by a killed daemon)."""
    with _errors():
        click.echo(mounts.unmount(mountpoint))


@cli.command()
@click.argument("path", required=False)
@state_dir_option("For a backing folder: where its index lives.")
def status(path: Optional[str], state_dir: Optional[str]) -> None:
    """Show PATH (a mountpoint or backing folder; default: every mount): state, pid, index."""
    from .core.index import service as index_service
    from .core.state import resolve_state_dir

    with _errors():
        found = mounts.status(path)
    if not found:
        click.echo("no semfs mounts")
        return
    for st in found:
        if st.record is not None:
            click.echo(f"{st.mountpoint}: {st.state}")
            click.echo(f"  backing:   {st.record.backing}")
            click.echo(f"  pid:       {st.record.pid}")
            state = Path(st.record.state_dir)
        elif os.path.isdir(st.mountpoint) and st.state == "not mounted" and any(os.scandir(st.mountpoint)):
            # not a mountpoint: a backing folder, described by its index
            click.echo(f"{st.mountpoint}: backing folder, not mounted")
            state = resolve_state_dir(Path(os.path.realpath(st.mountpoint)), state_dir)
        else:
            click.echo(f"{st.mountpoint}: {st.state}")
            continue
        click.echo(f"  state dir: {state}")
        with _errors():
            _echo_index(index_service.index_stats(state))


def _echo_index(stats) -> None:
    if stats is None:
        click.echo("  index:     none yet")
        return
    click.echo(
        f"  index:     {stats.indexed} files indexed, {stats.queued} queued, {stats.failed} failed, "
        f"{stats.chunks} chunks, {stats.bytes_on_disk / 1e6:.1f} MB on disk"
    )
    if stats.where:
        click.echo(f"  index at:  {stats.where}")
    if stats.meaning is not None:
        click.echo(f"  meaning:   {_meaning(stats.meaning)}")
    elif stats.vectors is not None:
        click.echo(f"  meaning:   {min(stats.vectors, stats.with_text)} of {stats.with_text} chunks embedded")
    for path, error in stats.failures:
        click.echo(f"  failed:    {path}: {error}")
    if stats.indexer and stats.indexer.startswith(("stopped", "waiting")):
        click.echo(f"  indexer:   {stats.indexer}")
    if stats.embedder:
        click.echo(f"  embedder:  {stats.embedder}")
    if stats.llm:
        click.echo(f"  llm:       {stats.llm}")
    n, files, size = stats.kept
    if n or stats.versions:
        p = stats.policy
        click.echo(
            f"  versions:  {_many(n, 'version')} of {_many(files, 'file')}, {_human(size)} "
            f"(keeping the newest {p.keep}, all from the last {p.days:g} days, at most {_human(p.max_bytes)}: semfs gc)"
        )
    if stats.versions:
        click.echo(f"  versions:  {stats.versions}")
    if stats.healed:
        click.echo(f"  healed:    {stats.healed}")


@cli.command()
@click.argument("backing")
@state_dir_option()
@index_options
def index(backing: str, state_dir: Optional[str], index_url: Optional[str], index_folder: Optional[str]) -> None:
    """Bring the index of BACKING up to date now (when it is not mounted)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .core.index import service as index_service

    with (
        _errors(),
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            transient=True,
            disable=not sys.stderr.isatty(),
            console=_stderr_console(),
        ) as bar,
    ):
        task = bar.add_task("words  ", total=None, rate="")
        started = time.monotonic()
        meaning_since: list[float] = []  # when the words were all in (and searchable by them)

        def progress(p) -> None:
            if p.phase == "meaning":
                if not meaning_since:
                    meaning_since.append(time.monotonic())
                rate = p.embedded / max(time.monotonic() - meaning_since[0], 1e-9)
                bar.update(
                    task, description="meaning", total=p.to_embed, completed=p.embedded, rate=f"{rate:.0f} chunks/s"
                )
                return
            rate = p.done / max(time.monotonic() - started, 1e-9)
            bar.update(task, total=p.total or None, completed=p.done, rate=f"{rate:.1f} files/s")

        state, prog = index_service.index_folder(
            backing, _embedder(), state_dir, progress, *_chosen_index(backing, index_url, index_folder)
        )
    took = time.monotonic() - started
    click.echo(
        f"indexed {prog.done} changed files ({prog.chunks} chunks, {prog.embedded} embedded) in {took:.1f}s; "
        f"state dir: {state}"
    )


def _chosen_index(backing: str, url: Optional[str], folder: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    from .stores.backends import chosen

    return chosen(url, folder, Path(backing).resolve())


def _meaning(m: dict) -> str:
    """'412 of 1400 files embedded; about 2 min left' from the indexer's record."""
    text = f"{m['embedded']} of {_many(m['files'], 'file')} embedded"
    if m["chunks_left"] and m.get("rate"):
        left = m["chunks_left"] / m["rate"]
        text += f"; about {left / 60:.0f} min left" if left >= 90 else f"; about {max(left, 1):.0f} s left"
    elif m["chunks_left"]:
        text += f"; {_many(m['chunks_left'], 'chunk')} waiting for the embedder"
    return text


def _embedder():
    """The CLI's embedder for indexing, in the precision this CPU runs best (measured once, cached)."""
    from .core.state import semfs_home
    from .models.embedder import make_embedder
    from .models.onnx_minilm import cache_dir

    home = semfs_home()
    return make_embedder(backend="auto", backend_cache=home / "backend.json", onnx_cache=cache_dir(home))


def _query_embedder():
    """The CLI's embedder for a few prompts: quick to start (ONNX), torch if it must."""
    from .core.state import semfs_home
    from .models.embedder import query_embedder

    return query_embedder(semfs_home())


def _many(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


@cli.command()
@index_options(required=True)
@click.option("--batch", default=64, show_default=True, help="Chunks claimed and embedded at a time.")
@click.option(
    "--lease", default=60.0, show_default=True, help="Seconds before another worker may take a claimed batch."
)
def worker(index_url: str, index_folder: str, batch: int, lease: float) -> None:
    """Embed a shared index's waiting chunks on this machine (no mount needed), until interrupted."""
    import signal
    import threading

    from .core.index.worker import run_worker

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if batch < 1 or lease <= 0:
        raise click.BadParameter("--batch and --lease must be positive")

    def said(claimed: int, stored: int) -> None:
        click.echo(f"embedded {claimed} chunks, stored {stored}", err=True)

    with _errors():
        stored = run_worker(index_url, index_folder, _embedder(), stop, batch=batch, lease=lease, on_batch=said)
    click.echo(f"stored {stored} vectors")


@cli.command()
@click.argument("backing")
@click.argument("prompt", required=False)
@click.option("-k", "--top", "k", default=10, show_default=True, help="How many files to list.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line: path, score, snippet.")
@click.option("--queries", type=click.File("r"), help="Run every line of FILE as a query ('-' for stdin).")
@click.option("--mode", type=click.Choice(["hybrid", "bm25", "dense"]), default="hybrid", show_default=True)
@state_dir_option()
def search(
    backing: str, prompt: Optional[str], k: int, as_json: bool, queries, mode: str, state_dir: Optional[str]
) -> None:
    """Files of BACKING that match PROMPT, best first."""
    from .core.index import service as index_service
    from .core.query.pipeline import answer

    if (prompt is None) == (queries is None):
        raise click.UsageError("give a PROMPT or --queries FILE (not both)")
    if k < 1:
        raise click.BadParameter("must be at least 1", param_hint="-k")
    prompts = [prompt] if prompt is not None else [ln.rstrip("\n") for ln in queries if ln.strip()]
    if prompt is not None and not prompt.strip():
        raise click.BadParameter("the prompt is empty", param_hint="PROMPT")
    with _errors():
        idx = index_service.Index(backing, _query_embedder(), state_dir)
        for q in prompts:
            res = answer(idx.searcher, q, k, rules=False, mode=mode)  # its words as they are, the whole ranking
            if res.degraded and mode != "bm25":
                click.echo(f"note: ranked by its words alone ({res.degraded})", err=True)
            _echo_hits(res.hits, as_json, snippets=True, extra={"query": q} if queries is not None else {})
            if not res.hits and not as_json:
                click.echo(f"no matches for {q!r}")


@cli.command()
@click.argument("backing")
@click.argument("prompt")
@click.option(
    "--save", "name", help="Save PROMPT as the folder query/NAME/ of the mount (for long prompts, or with '/')."
)
@click.option("-k", "--top", "k", default=10, show_default=True, help="How many files to list.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line: path, score, snippet.")
@click.option("--explain", is_flag=True, help="Print how the prompt was read (time range, kind, folder, keywords).")
@click.option(
    "--group-by",
    type=click.Choice(["kind", "folder", "month"]),
    help="Group the files (as '... by month' in PROMPT does; this wins).",
)
@state_dir_option()
@click.pass_context
def query(
    ctx,
    backing: str,
    prompt: str,
    name: Optional[str],
    k: int,
    as_json: bool,
    explain: bool,
    group_by: Optional[str],
    state_dir: Optional[str],
) -> None:
    """Run PROMPT as the mount's query/PROMPT/ folder would, or save it with --save."""
    from .core.query import service as query_service

    if not prompt.strip():
        raise click.BadParameter("the prompt is empty", param_hint="PROMPT")
    if explain or (name is None):
        with _errors():
            res = query_service.run_query(backing, prompt, _query_embedder(), k, state_dir)
        if explain and res.reading is not None:
            click.echo(json.dumps(res.reading.as_dict(), ensure_ascii=False, indent=1))
        if not res.hits and not as_json:
            click.echo(f"no file matches {prompt!r} well enough to be listed")
        by = group_by or (res.reading.group_by if res.reading is not None else None)
        if by is None:
            _echo_hits(res.hits, as_json, snippets=False)
            return
        for group, hits in query_service.grouped(backing, res.hits, by, state_dir).items():
            if not as_json:
                click.echo(f"{by} {group}:")
            _echo_hits(hits, as_json, snippets=False, extra={"group": group})
        return
    if name is not None:
        with _errors():
            query_service.save_query(backing, name, prompt, state_dir)
        click.echo(f"saved: query/{name}/ lists the files for {prompt!r}")


@cli.command()
@click.argument("backing")
@click.option("--files", "n_files", type=int, help="Show at most N files of each topic (default: all).")
@click.option("--json", "as_json", is_flag=True, help="The topics as one JSON document.")
@state_dir_option()
def topics(backing: str, n_files: Optional[int], as_json: bool, state_dir: Optional[str]) -> None:
    """The files of BACKING grouped by meaning, as the mount's topics/ folder shows them."""
    from .core.topics.service import folder_topics

    if n_files is not None and n_files < 0:
        raise click.BadParameter("must be 0 or more", param_hint="--files")
    with _errors():
        found = folder_topics(backing, state_dir)
    if as_json:
        click.echo(json.dumps({"topics": found}, ensure_ascii=False, indent=1))
        return
    if not found:
        click.echo("no topics yet: the folder's files have no vectors (see semfs status)")
    _echo_topics(found, n_files, "")


def _echo_topics(found: list[dict], n_files: Optional[int], indent: str) -> None:
    for t in found:
        click.echo(f"{indent}{t['name']}/ ({_many(len(t['files']), 'file')})")
        if "topics" in t:
            _echo_topics(t["topics"], n_files, indent + "  ")
            continue
        shown = t["files"] if n_files is None else t["files"][:n_files]
        for f in shown:
            click.echo(f"{indent}  {f['path']}")
        if len(shown) < len(t["files"]):
            click.echo(f"{indent}  ... and {len(t['files']) - len(shown)} more")


@cli.command()
@click.argument("path")
@backing_option
@click.option("--no-llm", is_flag=True, help="Do not use the model: show the file's beginning.")
@state_dir_option()
def summary(path: str, backing: Optional[str], no_llm: bool, state_dir: Optional[str]) -> None:
    """A short LLM summary of the file PATH (cached per content, like MNT/summary/PATH)."""
    from .core.query import service as query_service

    with _errors():
        click.echo(query_service.summarise_file(path, backing, use_llm=not no_llm, state_dir=state_dir))


@cli.command()
@click.argument("path")
@backing_option
@click.option(
    "--summaries", is_flag=True, help="Describe each change with the local LLM (cached; a diff stat without a model)."
)
@click.option(
    "--llm",
    "llm_path",
    default="default",
    show_default=True,
    envvar="SEMFS_LLM",
    help="With --summaries: a GGUF path, 'default' or 'off'.",
)
@state_dir_option()
def history(path: str, backing: Optional[str], summaries: bool, llm_path: str, state_dir: Optional[str]) -> None:
    """The kept versions of PATH: number, time, size, origin, and what the change did."""
    from .core.versions import service as versions_service

    with _errors():
        rows, notes = versions_service.history(
            path, backing, summaries=summaries, llm_spec=llm_path, state_dir=state_dir
        )
    for note in notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"{'version':>7}  {'kept at':19}  {'size':>10}  {'origin':8}  change")
    for c in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(c.time))
        click.echo(f"{c.version:>7}  {when}  {c.size:>10}  {c.origin:8}  {c.note}")


@cli.command()
@click.argument("folder")
@click.option("--keep", type=int, help="Keep at least the newest N versions of every file (saved as the policy).")
@click.option("--days", type=float, help="Keep every version younger than D days (saved as the policy).")
@click.option("--max-size", "max_size", type=Size(), help="Then prune the oldest until versions fit, e.g. 2G (saved).")
@click.option(
    "--reserve",
    type=Size(),
    help="Keep no version while the disk has less than this free, e.g. 2G (saved; default: 5% of it, 1 GiB at least).",
)
@click.option("--dry-run", is_flag=True, help="Say what would go, delete nothing, save nothing.")
@state_dir_option()
def gc(
    folder: str,
    keep: Optional[int],
    days: Optional[float],
    max_size: Optional[int],
    reserve: Optional[int],
    dry_run: bool,
    state_dir: Optional[str],
) -> None:
    """Prune the versions of FOLDER (a backing folder or its mountpoint) by its retention policy."""
    from .core.versions import service as versions_service
    from .core.versions.retention import GRACE

    with _errors():
        report, policy = versions_service.gc(
            folder, keep=keep, days=days, max_bytes=max_size, dry_run=dry_run, state_dir=state_dir, reserve=reserve
        )
    verb = "would prune" if dry_run else "pruned"
    click.echo(
        f"{verb} {_many(report.versions, 'version')} of {_many(report.paths, 'file')} and "
        f"{_many(report.blobs, 'blob')}: "
        f"{_human(report.bytes_freed)} freed, {_human(report.bytes_kept)} kept"
        + (
            f" ({report.waiting} blobs no version needs go once they are {GRACE / 60:g} minutes old)"
            if report.waiting
            else ""
        )
    )
    click.echo(
        f"policy: the newest {policy.keep} versions of each file and all from the last {policy.days:g} days, "
        f"then the oldest go until versions fit in {_human(policy.max_bytes)}; none is kept while the disk has "
        + ("under 5% free (1 GiB at least)" if policy.reserve is None else f"under {_human(policy.reserve)} free")
    )


@cli.command()
@click.argument("path")
@click.option("--version", "version", type=int, help="Restore this version number.")
@click.option("--steps", type=int, help="Go back N versions.")
@click.option("--at", "at", help="Restore the content as it was at this time (YYYY-MM-DD[ HH:MM[:SS]]).")
@click.option("--dry-run", is_flag=True, help="Show the diff, change nothing.")
@click.option("--force", is_flag=True, help="Restore even while another process has the file open for writing.")
@backing_option
@state_dir_option()
def rollback(
    path: str,
    version: Optional[int],
    steps: Optional[int],
    at: Optional[str],
    dry_run: bool,
    force: bool,
    backing: Optional[str],
    state_dir: Optional[str],
) -> None:
    """Restore PATH to a kept version (the content it replaces is kept too)."""
    import datetime as dt

    from .core.versions import service as versions_service

    if sum(x is not None for x in (version, steps, at)) != 1:
        raise click.UsageError("give exactly one of --version, --steps, --at")
    when = None
    if at is not None:
        try:
            when = dt.datetime.fromisoformat(at).timestamp()
        except ValueError:
            raise click.BadParameter(f"not a time: {at!r} (use YYYY-MM-DD HH:MM:SS)", param_hint="--at") from None
    with _errors():
        diff, v = versions_service.rollback(
            path, backing, version=version, steps=steps, at=when, dry_run=dry_run, force=force, state_dir=state_dir
        )
    if dry_run:
        click.echo(diff, nl=False)
    else:
        click.echo(f"restored {path} to version {v.version}")


@cli.command()
@click.argument("path")
@click.argument("v1", type=int, required=False)
@click.argument("v2", type=int, required=False)
@backing_option
@state_dir_option()
def diff(path: str, v1: Optional[int], v2: Optional[int], backing: Optional[str], state_dir: Optional[str]) -> None:
    """Unified diff of PATH: version V1 to V2 (default: the newest version to now)."""
    from .core.versions import service as versions_service

    with _errors():
        click.echo(versions_service.diff(path, backing, v1, v2, state_dir=state_dir), nl=False)


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("-o", "--output", "out", required=True, help="The file to write (through the mount, if mounted).")
@click.option("--by-heading", is_flag=True, help="Join the sources on their headings: one section per heading.")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
def join(sources: tuple[str, ...], out: str, by_heading: bool, force: bool) -> None:
    """Write one file from SOURCES, each under a heading that names it (LSFS's join)."""
    from .core.query import service as query_service

    with _errors():
        where = query_service.join_files(list(sources), out, by_heading=by_heading, force=force)
    click.echo(f"joined {_many(len(sources), 'file')} into {where}")


@cli.command()
@click.argument("folder")
@state_dir_option()
def mcp(folder: str, state_dir: Optional[str]) -> None:
    """Serve FOLDER (a mountpoint or a backing folder) to agents over MCP on stdio.

    Tools: search, similar, summary, history, diff, rollback (a dry run unless
    confirm is true), read. Add it to a client as a stdio server whose command
    is: semfs mcp FOLDER."""
    from . import agents

    with _errors():
        folder_ = agents.Folder(folder, state_dir)
    agents.server(folder_).run("stdio")
