"""The run store: run directories, tidy records, resume, and loading runs into pandas.

A run is ``<out>/<workload>/<run-id>/`` holding

- ``meta.json``: workload, preset, config, protocol card, provenance (:func:`nodebench.measure.capture`),
  status (``running`` -> ``complete`` | ``failed`` | ``interrupted``), error text, and one entry per
  attempt in ``attempts`` (the first run and every resume). Always replaced atomically.
- ``records.csv``: header ``run_id,workload,variant,seed,step,metric,value,unit`` and one row per
  measurement. ``seed`` and ``step`` are integers, ``-1`` (:data:`NO_SEED`, :data:`NO_STEP`) meaning
  "none"; ``value`` is a float (``nan``/``inf`` allowed). Each row goes to disk with one ``write`` and an
  ``fsync`` (one per unit when a unit's rows are committed together); a row cut off by a crash has no
  final newline and is reported, never accepted.
- ``units.jsonl``: the journal of completed units of work, each with the size ``records.csv`` had when
  the unit completed, the 1-minute load average where it ran at its start and end with the logical
  CPUs there, and the names of the artifacts it produced (``{"unit", "end", "load", "cpus",
  "artifacts"}``; ``artifacts`` only where there are some).
- ``checkpoints/``: the units' artifacts (e.g. model checkpoints), one file each, written atomically
  before the unit's journal line.
- ``held/``: results of units that completed out of plan order under a parallel executor, waiting for
  the units before them (one pickled :class:`~nodebench.units.UnitResult` per file, written
  atomically, removed when the unit is journalled): a run killed outright keeps them and a resume
  journals them without running them again.
- ``uncommitted-<n>.diff`` and ``untracked-<n>.txt``: only when attempt ``n`` (1 = the first run) started
  from a dirty checkout: ``git diff --binary HEAD`` and the untracked, not ignored files, named in that
  attempt's ``uncommitted`` entry (:func:`nodebench.measure.provenance.save_uncommitted`).

Resume protocol: every record belongs to a *unit* (a key such as ``"odenet/seed=0"``); the driver
(:mod:`nodebench.runner`) journals a unit's result with :meth:`Recorder.commit` and skips units for which
:meth:`Recorder.completed` is true. Resuming a run truncates ``records.csv`` to the end of its last
completed unit, dropping the rows of a unit that was cut off, so that unit reruns from its start and a
kill followed by resume yields the records of an uninterrupted run. A workload makes this exact by
seeding at the start of every unit (or by restoring a checkpoint, RNG state included, that an earlier
unit produced as an artifact).
"""

from __future__ import annotations

import contextlib
import csv
import glob
import hashlib
import io
import json
import os
import pickle
import secrets
import traceback
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import pandas as pd
import torch

from nodebench.measure.provenance import capture, save_uncommitted, utc_now
from nodebench.units import NO_SEED as NO_SEED
from nodebench.units import NO_STEP as NO_STEP
from nodebench.units import Row, UnitResult, check_artifact_name, check_text, load1, make_row, unit_clocks

COLUMNS = ("run_id", "workload", "variant", "seed", "step", "metric", "value", "unit")
META_COLUMNS = ("preset", "device", "status")
STATUSES = ("running", "complete", "failed", "interrupted")
META_FILE = "meta.json"
RECORDS_FILE = "records.csv"
UNITS_FILE = "units.jsonl"
HELD_DIR = "held"
_HEADER = (",".join(COLUMNS) + "\n").encode()

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: runs are not locked
    fcntl = None


class CorruptRecordsError(ValueError):
    """A records file (or unit journal) holds a line that is not a valid record."""


class RunStateError(RuntimeError):
    """A run cannot be used as asked: it is complete, in use by another process, or malformed."""


class ProgressHook(Protocol):
    """What a progress display offers the recorder (the CLI adapts tqdm to it)."""

    def set_total(self, total: int) -> None: ...

    def update(self, n: int) -> None: ...


# --------------------------------------------------------------------------------------------------
# Atomic files


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    Example: ``with atomic_write_path(recorder.checkpoint_path("model.pt")) as tmp: torch.save(state, tmp)``.

    Arguments:
        path: the final file.

    Returns:
        A context manager yielding the temporary path (removed if the block raises).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def write_json_atomic(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    with atomic_write_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# Reading


def read_meta(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``meta.json`` of a run, with ``run_dir`` (absolute) added.

    Raises:
        FileNotFoundError: ``run_dir`` holds no ``meta.json``.
        RunStateError: ``meta.json`` is not valid JSON.
    """
    path = Path(run_dir) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"not a run directory (no {META_FILE}): {Path(run_dir)}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunStateError(f"{path}: invalid JSON ({exc})") from exc
    meta["run_dir"] = str(Path(run_dir).resolve())
    return meta


def _split_complete_lines(data: bytes, path: Path) -> list[str]:
    """Lines of ``data`` without their newlines; a final line without newline is corruption."""
    try:
        lines = data.decode("utf-8").split("\n")
    except UnicodeDecodeError as exc:
        lineno = data[: exc.start].count(b"\n") + 1
        raise CorruptRecordsError(f"{path}:{lineno}: not UTF-8 text ({exc.reason})") from None
    if lines[-1] != "":
        raise CorruptRecordsError(
            f"{path}:{len(lines)}: incomplete last line {lines[-1]!r} (the run was cut off while writing; "
            "`nodebench run --resume RUN_DIR` repairs it)"
        )
    return lines[:-1]


def _parse_records(data: bytes, path: Path, run_id: str | None) -> list[tuple]:
    lines = _split_complete_lines(data, path)
    if not lines or lines[0] != ",".join(COLUMNS):
        found = lines[0] if lines else "(empty file)"
        raise CorruptRecordsError(f"{path}:1: expected header {','.join(COLUMNS)!r}, got {found!r}")
    rows = []
    for lineno, fields in enumerate(csv.reader(lines[1:]), start=2):
        try:
            if len(fields) != len(COLUMNS):
                raise ValueError(f"expected {len(COLUMNS)} fields, got {len(fields)}")
            rid, workload, variant, seed, step, metric, value, unit = fields
            if run_id is not None and rid != run_id:
                raise ValueError(f"run_id {rid!r} is not this run's {run_id!r}")
            rows.append((rid, workload, variant, int(seed), int(step), metric, float(value), unit))
        except ValueError as exc:
            raise CorruptRecordsError(
                f"{path}:{lineno}: corrupt record {lines[lineno - 1]!r}: {exc}"
            ) from None
    return rows


def read_records(run_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """The records of one run as a DataFrame with :data:`COLUMNS` (seed, step int64; value float64).

    Raises:
        CorruptRecordsError: a line is malformed (the message names the file and line number), or the
            file is shorter than ``units.jsonl`` says its completed units wrote (rows were lost; the
            message gives the ``--resume`` command that reruns those units).
    """
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    path = run_dir / RECORDS_FILE
    data = path.read_bytes()
    rows = _parse_records(data, path, meta.get("run_id"))
    units, _, _ = _read_units(run_dir)
    journal_end = max(units.values(), default=0)
    if len(data) < journal_end:
        lost = sum(1 for end in units.values() if end > len(data))
        raise CorruptRecordsError(
            f"{path}: {len(data)} bytes but {UNITS_FILE} says {journal_end} were recorded: the rows of "
            f"{lost} completed unit(s) are missing; "
            f"`nodebench run {meta.get('workload', 'WORKLOAD')} --resume {run_dir}` reruns them"
        )
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype({"seed": "int64", "step": "int64", "value": "float64"})


def resolve_run_dirs(
    paths_or_globs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> list[Path]:
    """Run directories named by run directories, folders holding runs (searched recursively) or globs.

    Returns:
        Absolute run directories, without duplicates, in the order given.

    Raises:
        FileNotFoundError: an item matches no run.
    """
    if isinstance(paths_or_globs, str | os.PathLike):
        paths_or_globs = [paths_or_globs]
    found: list[Path] = []
    for item in paths_or_globs:
        text = os.fspath(item)
        matches = sorted(glob.glob(text, recursive=True)) if glob.has_magic(text) else [text]
        dirs = []
        for match in map(Path, matches):
            if (match / META_FILE).is_file():
                dirs.append(match)
            elif match.is_dir():
                dirs.extend(sorted(p.parent for p in match.rglob(META_FILE)))
        if not dirs:
            raise FileNotFoundError(
                f"no runs found at {text!r} (expected a run directory, a folder of runs or a glob)"
            )
        found.extend(d.resolve() for d in dirs)
    return list(dict.fromkeys(found))


def load_runs(paths_or_globs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """Read any set of runs into one tidy DataFrame.

    Arguments:
        paths_or_globs: run directories, folders holding runs (searched recursively), or glob patterns.

    Returns:
        The records (:data:`COLUMNS`) plus the meta columns ``preset``, ``device`` and ``status`` of
        each run, in run order then file order.

    Raises:
        FileNotFoundError: an item matches no run.
        CorruptRecordsError: a records line is malformed (file and line number in the message).
    """
    frames = []
    for run_dir in resolve_run_dirs(paths_or_globs):
        meta = read_meta(run_dir)
        frame = read_records(run_dir)
        for column in META_COLUMNS:
            frame[column] = meta.get(column)
        frames.append(frame)
    columns = [*COLUMNS, *META_COLUMNS]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def find_runs(
    root: str | os.PathLike[str],
    workload: str | None = None,
    preset: str | None = None,
    device: str | None = None,
    status: str | Iterable[str] | None = None,
) -> list[Path]:
    """Run directories under ``root`` (``<root>/<workload>/<run-id>``) matching the filters, oldest first.

    Arguments:
        root: the runs folder, e.g. ``results/runs``; a missing folder gives no runs.
        workload, preset, device: keep runs whose meta has this value (``None``: any).
        status: a status or several (``None``: any).

    Returns:
        Matching run directories sorted by start time, then run id.
    """
    statuses = {status} if isinstance(status, str) else None if status is None else set(status)
    runs = []
    for meta_path in Path(root).glob(f"{workload or '*'}/*/{META_FILE}"):
        try:
            meta = read_meta(meta_path.parent)
        except RunStateError:
            continue
        if (
            (preset is None or meta.get("preset") == preset)
            and (device is None or meta.get("device") == device)
            and (statuses is None or meta.get("status") in statuses)
        ):
            runs.append((meta.get("started_at", ""), meta.get("run_id", ""), meta_path.parent))
    return [path for *_, path in sorted(runs)]


def latest_runs(root: str | os.PathLike[str], status: str | Iterable[str] | None = "complete") -> list[Path]:
    """The latest run per workload and preset under ``root`` among runs with ``status``.

    Returns:
        One run directory per (workload, preset), sorted by workload then preset.
    """
    latest: dict[tuple[str, str], Path] = {}
    for run_dir in find_runs(root, status=status):
        meta = read_meta(run_dir)
        latest[(meta.get("workload", ""), meta.get("preset", ""))] = run_dir
    return [latest[key] for key in sorted(latest)]


# --------------------------------------------------------------------------------------------------
# Writing


def new_run_id() -> str:
    """A run id: UTC time to the second plus a random suffix, e.g. ``20240501T120000Z-3fa91c``."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _lock(fd: int, path: Path) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunStateError(f"run {path.parent} is in use by another process") from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


class Recorder:
    """Writes one run: records, unit journal, status. Create with :func:`create_run` or :func:`resume_run`.

    Use as a context manager around the workload: leaving it normally marks the run ``complete``, by
    ``KeyboardInterrupt`` ``interrupted``, by any other exception ``failed`` (with the error text); the
    records are kept in every case and the exception propagates.

    The driver (:func:`nodebench.runner.run_units`) journals each unit's result with :meth:`commit`;
    :meth:`unit` with :meth:`record` writes a unit row by row (tests and hand-made runs use it)::

        with recorder.unit("odenet/seed=0"):
            recorder.record("odenet", 0, step, "loss", loss, "")

    Attributes:
        run_dir: the run directory.
        run_id: the run id.
        meta: the run's meta dict (as in ``meta.json``).
        progress: an optional :class:`ProgressHook` fed by :meth:`set_total` and :meth:`tick`.
    """

    def __init__(
        self,
        run_dir: Path,
        meta: dict[str, Any],
        records_fd: int,
        units: dict[str, int],
        artifacts: dict[str, list[str]] | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.meta = meta
        self.run_id: str = meta["run_id"]
        self.workload: str = meta["workload"]
        self.progress: ProgressHook | None = None
        self._records_fd = records_fd
        self._units_fd = os.open(run_dir / UNITS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._done = units
        self._artifacts: dict[str, list[str]] = dict(artifacts or {})
        self._committed_end = max(units.values(), default=len(_HEADER))
        self._current: str | None = None

    # ---- records

    def record(self, variant: str, seed: int, step: int, metric: str, value: float, unit: str = "") -> None:
        """Append one measurement (written and fsynced at once). Must be called inside :meth:`unit`.

        Arguments:
            variant: what was measured, e.g. ``"odenet"`` or ``"dopri5/adjoint"``.
            seed: the seed, or :data:`NO_SEED` (-1).
            step: a step, epoch or size index, or :data:`NO_STEP` (-1).
            metric: the quantity, e.g. ``"test_error"``.
            value: a number (anything ``float()`` accepts, e.g. a 0-d tensor).
            unit: the physical unit, e.g. ``"s"``, ``"bytes"``, ``""`` for dimensionless.
        """
        if self._current is None:
            raise RuntimeError(f"record({variant!r}, ..., {metric!r}) outside `with recorder.unit(key):`")
        _write_all(self._records_fd, self._encode([make_row(variant, seed, step, metric, value, unit)]))

    def _encode(self, rows: Iterable[Row]) -> bytes:
        line = io.StringIO()
        writer = csv.writer(line, lineterminator="\n")
        for row in rows:
            fields = (self.run_id, self.workload, row.variant, row.seed, row.step, row.metric)
            writer.writerow((*fields, repr(float(row.value)), row.unit))
        return line.getvalue().encode()

    # ---- units

    def completed(self, key: str) -> bool:
        """Whether unit ``key`` completed in this run (now or in an earlier attempt)."""
        return key in self._done

    @contextlib.contextmanager
    def unit(
        self,
        key: str,
        artifacts: Iterable[str] = (),
        load: Sequence[float | None] | None = None,
        cpus: int | None = None,
        seconds: tuple[float, float] | None = None,
    ) -> Iterator[None]:
        """A unit of work: the resume granularity. Records are only allowed inside one.

        On normal exit the unit is journalled as complete. If it raises, its rows stay in the file
        (a failed run keeps them) and are dropped when a later unit starts or the run is resumed.

        Arguments:
            key: unique within the run, no line breaks, e.g. ``"rk4/L=8/seed=0"``.
            artifacts: names of files in ``checkpoints/`` that belong to the unit (written already).
            load, cpus: the 1-minute load average at the unit's start and end and the logical CPUs
                where it ran (``None``: measured here, around the block).
            seconds: the unit's wall time and process CPU time where it ran (``None``: measured here,
                around the block).

        Raises:
            RuntimeError: ``key`` already completed (check :meth:`completed` first) or units are nested.
        """
        check_text("unit key", key)
        if self._current is not None:
            raise RuntimeError(f"unit {key!r} opened inside unit {self._current!r}; units do not nest")
        if key in self._done:
            raise RuntimeError(
                f"unit {key!r} already completed in run {self.run_id}; check completed() first"
            )
        self._drop_uncommitted()
        self._current = key
        load_start = load1() if load is None else None
        clocks = unit_clocks() if seconds is None else None
        try:
            yield
        finally:
            self._current = None
        end = os.fstat(self._records_fd).st_size
        names = list(artifacts)
        loads = [load_start, load1()] if load is None else list(load)
        wall_s, cpu_s = unit_clocks(clocks) if clocks is not None else seconds
        entry = {"unit": key, "end": end, "load": loads, "cpus": os.cpu_count() if cpus is None else cpus}
        entry |= {"wall_s": round(wall_s, 3), "cpu_s": round(cpu_s, 3)}
        if names:
            entry["artifacts"] = names
        _write_all(self._units_fd, (json.dumps(entry) + "\n").encode())
        self._done[key] = end
        self._artifacts[key] = names
        self._committed_end = end

    def _drop_uncommitted(self) -> None:
        if os.fstat(self._records_fd).st_size != self._committed_end:  # rows of an abandoned unit
            os.ftruncate(self._records_fd, self._committed_end)

    def commit(self, result: UnitResult) -> None:
        """Journal a unit's result: its artifacts (atomically), then its rows (one write), then the unit.

        Raises:
            RuntimeError: the unit already completed, or a unit is open.
        """
        for name, data in result.artifacts.items():
            with atomic_write_path(self.checkpoint_path(check_artifact_name(name))) as tmp:
                tmp.write_bytes(data)
        with self.unit(
            result.key, artifacts=result.artifacts, load=result.load, cpus=result.cpus, seconds=result.seconds
        ):
            if result.rows:
                _write_all(self._records_fd, self._encode(result.rows))
        self._held_path(result.key).unlink(missing_ok=True)

    def _held_path(self, key: str) -> Path:
        return self.run_dir / HELD_DIR / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".pkl")

    def hold(self, result: UnitResult) -> None:
        """Keep the result of a unit that completed before units planned ahead of it, until it can be
        journalled (:meth:`commit` removes it); a resumed run gets it back from :meth:`held`."""
        if result.key in self._done:
            return
        path = self._held_path(result.key)
        path.parent.mkdir(exist_ok=True)
        with atomic_write_path(path) as tmp:
            tmp.write_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))

    def held(self) -> dict[str, UnitResult]:
        """The results held by :meth:`hold` (in this or an earlier attempt) of units not journalled."""
        out: dict[str, UnitResult] = {}
        folder = self.run_dir / HELD_DIR
        for path in sorted(folder.glob("*.pkl")) if folder.is_dir() else ():
            try:
                result = pickle.loads(path.read_bytes())
            except Exception as exc:  # written atomically, so only a foreign file gets here
                raise RunStateError(
                    f"held result {path} cannot be read ({exc}); delete it to rerun its unit"
                ) from exc
            if not isinstance(result, UnitResult) or path != self._held_path(result.key):
                raise RunStateError(f"{path} is not a held unit result of this run; delete it")
            if result.key in self._done:  # journalled just before a kill removed the file
                path.unlink(missing_ok=True)
            else:
                out[result.key] = result
        return out

    def keep_unfinished(self, result: UnitResult) -> None:
        """Write the rows a unit made before it failed, unjournalled (a later unit or resume drops them)."""
        if self._current is not None:
            raise RuntimeError(f"keep_unfinished() while unit {self._current!r} is open")
        self._drop_uncommitted()
        if result.rows:
            _write_all(self._records_fd, self._encode(result.rows))

    def artifact_names(self, key: str) -> list[str]:
        """Names of the artifacts completed unit ``key`` produced (empty if none or not completed)."""
        return list(self._artifacts.get(key, []))

    def read_artifacts(self, key: str) -> dict[str, bytes]:
        """The artifacts of completed unit ``key`` (name -> bytes).

        Raises:
            RunStateError: a journalled artifact is missing from ``checkpoints/``.
        """
        out = {}
        for name in self.artifact_names(key):
            path = self.run_dir / "checkpoints" / name
            if not path.is_file():
                raise RunStateError(f"unit {key!r} of run {self.run_dir} produced {name}, which is missing")
            out[name] = path.read_bytes()
        return out

    def delete_artifacts(self, key: str) -> None:
        """Delete the artifacts of completed unit ``key`` (spent: no later unit reads them)."""
        for name in self.artifact_names(key):
            (self.run_dir / "checkpoints" / name).unlink(missing_ok=True)

    def checkpoint_path(self, name: str) -> Path:
        """A path for a checkpoint file ``name`` inside the run (``checkpoints/`` is created).

        Write it with :func:`atomic_write_path` so a crash never leaves half a checkpoint.
        """
        if not name or Path(name).name != name:
            raise ValueError(f"checkpoint name must be a plain file name, got {name!r}")
        folder = self.run_dir / "checkpoints"
        folder.mkdir(exist_ok=True)
        return folder / name

    # ---- progress

    def set_total(self, total: int) -> None:
        """Declare the amount of work (in ticks) for the progress display."""
        if self.progress is not None:
            self.progress.set_total(total)

    def tick(self, n: int = 1) -> None:
        """Advance the progress display by ``n`` ticks (tick skipped work too, so the bar completes)."""
        if self.progress is not None:
            self.progress.update(n)

    # ---- status

    def finish(self, status: str, error: str | None = None) -> None:
        """Set the final status, write ``meta.json`` and release the run. Called by ``__exit__``.

        Arguments:
            status: ``complete``, ``failed`` or ``interrupted``.
            error: the error text for ``failed``/``interrupted``.
        """
        if status not in STATUSES[1:]:
            raise ValueError(f"status must be one of {STATUSES[1:]}, got {status!r}")
        if self._records_fd < 0:
            raise RuntimeError(f"run {self.run_id} is already finished")
        ended = utc_now()
        self.meta.update(status=status, error=error, ended_at=ended)
        # Workloads may set their own thread count after the run was created: keep what actually ran.
        self.meta["attempts"][-1].update(status=status, ended_at=ended, torch_threads=torch.get_num_threads())
        write_json_atomic(self.run_dir / META_FILE, self.meta)
        for fd in (self._units_fd, self._records_fd):
            os.close(fd)
        self._records_fd = self._units_fd = -1

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.finish("complete")
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("interrupted", f"KeyboardInterrupt {exc}".strip())
        else:
            text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            self.finish("failed", text)


def unit_journal(run_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Each completed unit of a run as its journal recorded it: load beside it and what it cost.

    Returns:
        Columns ``unit``, ``load_start``, ``load_end`` (1-minute load average when the unit started and
        ended), ``cpus`` (logical CPUs where it ran), ``wall_s`` and ``cpu_s`` (the unit's wall time and
        its process's CPU time, user + system, in seconds); NaN where a unit journalled before that
        field was recorded.
    """
    path = Path(run_dir) / UNITS_FILE
    rows = []
    for raw in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        try:
            entry = json.loads(raw)
        except ValueError:
            continue  # a torn last line; resume repairs it
        load = entry.get("load") or [None, None]
        rows.append(
            (entry.get("unit"), load[0], load[1], entry.get("cpus"), entry.get("wall_s"), entry.get("cpu_s"))
        )
    columns = ["unit", "load_start", "load_end", "cpus", "wall_s", "cpu_s"]
    return pd.DataFrame(rows, columns=columns).astype({c: "float64" for c in columns[1:]})


def _attempt(provenance: dict[str, Any]) -> dict[str, Any]:
    keys = ("started_at", "command", "git_commit", "git_dirty", "versions", "hostname", "device")
    return {key: provenance[key] for key in keys} | {
        "pid": os.getpid(),
        "status": "running",
        "ended_at": None,
    }


def _save_uncommitted(run_dir: Path, meta: dict[str, Any]) -> None:
    """When the latest attempt ran from a dirty tree, save its diff and untracked list (``uncommitted``)."""
    attempt = meta["attempts"][-1]
    if attempt.get("git_dirty"):
        attempt["uncommitted"] = save_uncommitted(run_dir, str(len(meta["attempts"])))


def create_run(
    out_dir: str | os.PathLike[str],
    workload: str,
    preset: str,
    config: dict[str, Any],
    device: str = "cpu",
    protocol: str = "",
    command: str | None = None,
) -> Recorder:
    """Start a new run in ``<out_dir>/<workload>/<run-id>/``; never touches an existing run.

    Arguments:
        out_dir: the runs folder, e.g. ``results/runs``.
        workload: the workload name.
        preset: the preset name the config came from.
        config: the full config as a JSON-serialisable dict (with ``seeds``).
        device: the device the run uses, e.g. ``"cpu"``.
        protocol: the workload's protocol card (markdown), kept so reports need no workload code.
        command: the command line (``None``: ``sys.argv``).

    Returns:
        A :class:`Recorder` with status ``running``.
    """
    check_text("workload", workload)
    provenance = capture(device, command)
    parent = Path(out_dir) / workload
    parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        run_id = new_run_id()
        try:
            (parent / run_id).mkdir(exist_ok=False)
            break
        except FileExistsError:
            continue
    else:
        raise RunStateError(f"could not create a unique run directory under {parent}")
    run_dir = parent / run_id
    meta = {
        "run_id": run_id,
        "workload": workload,
        "preset": preset,
        "status": "running",
        "error": None,
        "started_at": provenance["started_at"],
        "ended_at": None,
        "seeds": config.get("seeds"),
        "config": config,
        "protocol": protocol,
        **{key: value for key, value in provenance.items() if key != "started_at"},
        "attempts": [_attempt(provenance)],
    }
    _save_uncommitted(run_dir, meta)
    records_path = run_dir / RECORDS_FILE
    fd = os.open(records_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
    _lock(fd, records_path)
    _write_all(fd, _HEADER)
    write_json_atomic(run_dir / META_FILE, meta)
    return Recorder(run_dir, meta, fd, {})


def _read_units(run_dir: Path, limit: int | None = None) -> tuple[dict[str, int], dict[str, list[str]], int]:
    """Completed units, their artifacts, and the byte length of the journal's valid part.

    A torn last line is not valid. With ``limit`` (the size of ``records.csv``), the journal ends before
    the first unit whose rows end past it.
    """
    path = run_dir / UNITS_FILE
    data = path.read_bytes() if path.exists() else b""
    units: dict[str, int] = {}
    artifacts: dict[str, list[str]] = {}
    valid = 0
    for lineno, raw in enumerate(data.split(b"\n")[:-1], start=1):
        try:
            entry = json.loads(raw)
            if limit is not None and int(entry["end"]) > limit:
                break
            units[entry["unit"]] = int(entry["end"])
            artifacts[entry["unit"]] = [str(name) for name in entry.get("artifacts", [])]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptRecordsError(f"{path}:{lineno}: corrupt unit entry {raw!r}: {exc}") from None
        valid += len(raw) + 1
    return units, artifacts, valid


def journalled_units(run_dir: str | os.PathLike[str]) -> list[str]:
    """The keys of the units a run's journal records as completed, in journal order."""
    return list(_read_units(Path(run_dir))[0])


def resume_run(run_dir: str | os.PathLike[str], command: str | None = None) -> Recorder:
    """Reopen an unfinished run (``interrupted``, ``failed``, or ``running`` but killed) to continue it.

    Rows after the last completed unit -- those of the unit that was cut off -- are dropped, as is a
    torn last line of the unit journal. A new entry is added to ``meta["attempts"]``.

    Arguments:
        run_dir: the run directory.
        command: the command line of this attempt (``None``: ``sys.argv``).

    Returns:
        A :class:`Recorder` with status ``running``; :meth:`Recorder.completed` knows the kept units.

    Raises:
        RunStateError: the run is complete or in use by another process.
        CorruptRecordsError: the kept records are malformed.
    """
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    meta.pop("run_dir")
    records_path = run_dir / RECORDS_FILE
    lost_rows = records_path.exists() and records_path.stat().st_size < max(
        _read_units(run_dir)[0].values(), default=0
    )
    if meta.get("status") == "complete" and not lost_rows:
        raise RunStateError(f"run {run_dir} is already complete; start a new run instead of resuming")
    fd = os.open(records_path, os.O_RDWR | os.O_APPEND)
    _lock(fd, records_path)
    try:
        data = records_path.read_bytes()
        # Units whose rows are no longer all in records.csv (a file cut short) leave the journal and rerun.
        units, artifacts, journal_valid = _read_units(run_dir, limit=len(data))
        end = max(units.values(), default=len(_HEADER))
        _parse_records(data[:end], records_path, meta["run_id"])
        os.ftruncate(fd, end)
        os.fsync(fd)
        if (run_dir / UNITS_FILE).exists():
            os.truncate(run_dir / UNITS_FILE, journal_valid)
    except BaseException:
        os.close(fd)
        raise
    provenance = capture(meta.get("device", "cpu"), command)
    meta.update(status="running", error=None, ended_at=None)
    meta.setdefault("attempts", []).append(_attempt(provenance))
    _save_uncommitted(run_dir, meta)
    write_json_atomic(run_dir / META_FILE, meta)
    return Recorder(run_dir, meta, fd, units, artifacts)
