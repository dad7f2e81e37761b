"""``nodebench run | reproduce | report | check | data``."""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import torch

from nodebench import runner, store, workloads
from nodebench.report import figure_rows, final_values, markdown_table

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _UsageError(Exception):
    """Bad arguments or state: printed as ``nodebench: error: ...`` with exit status 2."""


class _TqdmProgress:
    """Adapts a tqdm bar to :class:`nodebench.store.ProgressHook`."""

    def __init__(self, description: str) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(desc=description, total=None, unit="tick", dynamic_ncols=True, file=sys.stderr)

    def set_total(self, total: int) -> None:
        self.bar.total = total
        self.bar.refresh()

    def update(self, n: int) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise _UsageError(
            "--device cuda: CUDA is not available on this machine (torch.cuda.is_available() is False)"
        )
    return torch.device(name)


def _command(argv: list[str]) -> str:
    return shlex.join(["nodebench", *argv])


def _load_workload(name: str) -> ModuleType:
    try:
        return workloads.load(name)
    except workloads.WorkloadNotAvailable as exc:
        raise _UsageError(str(exc)) from None


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (``kill``, a scheduler's stop) ends a run as Ctrl-C does.

    The run is then recorded as ``interrupted`` (its records kept, resumable) instead of being left
    ``running`` by a process that died mid-write. Background jobs ignore SIGINT, so this is how they
    are stopped. Only the main thread can install handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _execute(
    module: ModuleType,
    recorder: store.Recorder,
    config: object,
    brief: bool = False,
    executor: runner.Executor | None = None,
) -> int:
    """Run the workload's units into ``recorder`` with a progress bar; print the outcome and the status.

    ``brief``: one line per run instead of its final-values table (``reproduce``).
    """
    progress = _TqdmProgress(f"{module.NAME} ({recorder.meta.get('preset')})")
    recorder.progress = progress
    resume_hint = f"nodebench run {module.NAME} --resume {recorder.run_dir}"
    try:
        with _terminate_as_interrupt(), recorder:
            runner.run_units(module, config, recorder, executor)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; records kept in {recorder.run_dir}\nresume with: {resume_hint}", file=sys.stderr
        )
        return EXIT_INTERRUPTED
    except Exception:
        traceback.print_exc()
        print(f"run failed; records kept in {recorder.run_dir}\nresume with: {resume_hint}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        progress.close()
    _summary(recorder.run_dir, brief)
    return 0


def _summary(run_dir: Path, brief: bool = False) -> None:
    meta = store.read_meta(run_dir)
    records = store.read_records(run_dir)
    if brief:
        status = f"{meta['status']}, {len(records)} records"
        print(f"{meta['workload']:<10} {meta['preset']}: {status} in {run_dir}")
        return
    print(
        f"\n{meta['workload']} ({meta['preset']}, {meta['device']}): {meta['status']}, {len(records)} records"
    )
    figure = figure_rows(meta["workload"], records)
    if not records[~figure].empty:
        print(markdown_table(final_values(records[~figure])))
    if figure.any():  # per-point data (trajectories, per-test outcomes): the report draws or lists it
        print(f"({int(figure.sum())} figure-data rows left out of this table; see the run's report)")
    print(f"run directory: {run_dir}")


def _cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    module = _load_workload(args.workload)
    command = _command(argv)
    executor = _make_executor(args)
    try:
        if args.resume is not None:
            if args.set:
                raise runner.RunSetupError("--set: a resumed run keeps its stored config; omit --set")
            with contextlib.suppress(FileNotFoundError, store.RunStateError):
                _device(store.read_meta(args.resume).get("device", "cpu"))  # the run's device must exist here
            recorder, config = runner.resume(
                module, args.resume, command, preset=args.preset, device=args.device, seeds=args.seed
            )
        else:
            device = _device(args.device or "cpu")
            preflight = getattr(module, "preflight", None)
            planned = runner.configure(module, args.preset or "smoke", args.seed, args.set)[0]
            reason = preflight(planned, device) if preflight else None
            if reason:  # e.g. missing data: say so before a run directory exists
                raise _UsageError(f"{module.NAME} cannot run: {reason}")
            recorder, config = runner.new_run(
                module, args.out, args.preset or "smoke", str(device), command, args.seed, args.set
            )
    except (runner.RunSetupError, ValueError) as exc:
        raise _UsageError(str(exc)) from None
    try:
        return _execute(module, recorder, config, executor=executor)
    finally:
        _close(executor)


def _cmd_report(args: argparse.Namespace) -> int:
    from nodebench.report import build_report

    if args.summary is not None:
        return _cmd_summary(args)
    if args.docs:
        from nodebench.report import prose

        try:
            return prose.main(["--check"] if args.check else [], runner.finished_parts)
        except (prose.StaleFact, OSError) as exc:
            print(f"nodebench report --docs: {exc}", file=sys.stderr)
            return EXIT_FAILED
    if args.check:
        raise _UsageError("--check goes with --docs")
    run_dirs = [Path(p) for p in args.run_dirs] or store.latest_runs(args.runs)
    if not run_dirs:
        print(f"nodebench report: no complete runs under {args.runs}", file=sys.stderr)
        return EXIT_FAILED
    try:
        run_dirs = store.resolve_run_dirs(run_dirs)
        path = build_report(run_dirs, args.out, runner.finished_parts)
    except (FileNotFoundError, store.RunStateError) as exc:
        raise _UsageError(str(exc)) from None
    except store.CorruptRecordsError as exc:
        print(f"nodebench report: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"report written to {path} ({len(run_dirs)} run(s))")
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    """``nodebench report --summary [PATH]``: the claims summary over the given runs or every run."""
    from nodebench.report.summary import build_summary

    try:
        path = build_summary(args.run_dirs or [args.runs], args.summary, runner.finished_parts)
    except FileNotFoundError as exc:
        raise _UsageError(str(exc)) from None
    except store.CorruptRecordsError as exc:
        print(f"nodebench report: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"summary written to {path}")
    return 0


def _cmd_reproduce(args: argparse.Namespace, argv: list[str]) -> int:
    device = _device(args.device)
    executor = _make_executor(args)
    try:
        return _reproduce(args, argv, device, executor)
    finally:
        _close(executor)


def _reproduce(
    args: argparse.Namespace, argv: list[str], device: torch.device, executor: runner.Executor
) -> int:
    from nodebench.report import build_report

    runs_root = Path(args.out) / "runs"
    command = _command(argv)
    produced: list[Path] = []
    failed = False
    for name in workloads.names():
        try:
            module = workloads.load(name)
        except workloads.WorkloadNotAvailable as exc:
            print(f"skip {name}: {exc}", file=sys.stderr)
            continue
        config = module.PRESETS[args.preset]
        preflight = getattr(module, "preflight", None)
        try:
            reason = preflight(config, device) if preflight is not None else None
        except Exception as exc:
            reason = f"preflight check failed: {type(exc).__name__}: {exc}"
        if reason:
            print(f"skip {name}: {reason}", file=sys.stderr)
            continue
        try:
            previous = runner.unfinished_run(runs_root, module, args.preset, str(device))
            if previous is not None:
                print(f"{name}: resuming {previous}", file=sys.stderr)
                recorder, config = runner.resume(module, previous, command)
            else:
                recorder, config = runner.new_run(module, runs_root, args.preset, str(device), command)
        except (runner.RunSetupError, store.RunStateError, ValueError) as exc:
            print(f"skip {name}: {exc}", file=sys.stderr)
            failed = True
            continue
        status = _execute(module, recorder, config, brief=True, executor=executor)
        produced.append(recorder.run_dir)
        if status == EXIT_INTERRUPTED:
            return status
        failed = failed or status != 0
    if not produced:
        print("nodebench reproduce: no workload is available to run", file=sys.stderr)
        return EXIT_FAILED
    path = build_report(produced, Path(args.out) / "report", runner.finished_parts)
    print(f"report written to {path}")
    if args.preset == "smoke":
        print("smoke numbers are plumbing checks, not results: see results/SUMMARY.md for the committed ones")
    return EXIT_FAILED if failed else 0


def _cmd_check(args: argparse.Namespace) -> int:
    from nodebench.reference import check

    _device(args.device)
    return check.main(args.device, args.quick)


def _cmd_data(args: argparse.Namespace) -> int:
    from nodebench.data import mnist

    try:
        root = mnist.data_root(args.dir)
    except NotADirectoryError as exc:  # a bad --dir or $NODEBENCH_DATA is a usage error
        raise _UsageError(str(exc)) from None
    try:
        info = mnist.get_dataset(args.dataset or "mnist", root, args.from_dir, log=print)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(info.summary())
    return 0


MAX_SEED = 2**32  # numpy's seeds; -1 is the records' "no seed" marker


def _seed(text: str) -> int:
    """``--seed``: an integer ``0 <= s < 2**32``, checked before a run directory exists."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} is outside 0 <= seed < 2**32")
    return value


def _out_dir(text: str) -> str:
    """``--out``: a directory that exists and is writable, or that can be created (nearest existing
    parent a writable directory); checked before anything is written."""
    path = Path(text).expanduser()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        what = "is" if probe == path else f"has {probe} in its path, which is"
        raise argparse.ArgumentTypeError(f"{text} {what} a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: {probe} is not writable")
    return text


def _executor_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("executor (where the units run)")
    group.add_argument(
        "--executor",
        choices=sorted(runner.EXECUTORS),
        default="local",
        help="local: one after another in this process (default); ray: as Ray tasks (pip install "
        "'nodebench[ray]'), on an embedded local Ray or the cluster at --address",
    )
    group.add_argument(
        "--address", help="Ray cluster address (ray start --head prints it; 'auto': the local one)"
    )
    group.add_argument("--cpus-per-unit", type=float, metavar="C", help="Ray: CPUs per unit (default 1)")
    group.add_argument(
        "--gpus-per-unit",
        type=float,
        metavar="G",
        help="Ray: GPUs per unit, fractions share (default: 1 on cuda)",
    )
    group.add_argument(
        "--max-retries", type=int, metavar="N", help="Ray: reruns of a unit whose worker died (default 3)"
    )


def _make_executor(args: argparse.Namespace) -> runner.Executor:
    """The executor the arguments ask for; ``_UsageError`` for Ray options without ``--executor ray``."""
    options = {
        "address": args.address,
        "cpus_per_unit": args.cpus_per_unit,
        "gpus_per_unit": args.gpus_per_unit,
        "max_retries": args.max_retries,
    }
    given = {key: value for key, value in options.items() if value is not None}
    if args.executor != "ray":
        if given:
            flags = ", ".join("--" + key.replace("_", "-") for key in given)
            raise _UsageError(f"{flags}: only with --executor ray")
        return runner.get_executor(args.executor)
    from nodebench.ray_executor import RayNotInstalled, import_ray

    try:
        import_ray()
    except RayNotInstalled as exc:
        raise _UsageError(str(exc)) from None
    try:
        return runner.get_executor("ray", **given)
    except runner.RunSetupError as exc:
        raise _UsageError(str(exc)) from None


def _close(executor: object) -> None:
    """Release what the executor holds (an embedded Ray it started)."""
    close = getattr(executor, "close", None)
    if callable(close):
        close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nodebench", description="Benchmark and reproducibility suite for Neural ODEs."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    presets = list(workloads.PRESET_NAMES)

    run = sub.add_parser("run", help="run one workload into a new run directory (or resume one)")
    run.add_argument("workload", help=f"workload name ({', '.join(workloads.names())})")
    run.add_argument(
        "--preset",
        help=f"config preset ({', '.join(presets)}, or another the workload defines; default: smoke)",
    )
    run.add_argument("--device", choices=["cpu", "cuda"], help="device (default: cpu)")
    run.add_argument("--seed", type=_seed, nargs="+", metavar="N", help="seeds, replacing the preset's")
    run.add_argument(
        "--out", type=_out_dir, default="results/runs", help="runs folder (default: results/runs)"
    )
    run.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted or failed run")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one config field of the preset (VALUE a Python literal); the run's preset label "
        "becomes PRESET+KEY=VALUE,... and its protocol card names the change",
    )
    _executor_options(run)

    report = sub.add_parser("report", help="write REPORT.md and figures from stored runs")
    report.add_argument(
        "run_dirs",
        nargs="*",
        metavar="RUN_DIR",
        help="runs to report (default: latest complete run per workload and preset)",
    )
    report.add_argument(
        "--runs", default="results/runs", help="where to look for runs by default (default: results/runs)"
    )
    report.add_argument(
        "--out", type=_out_dir, default="results/report", help="report folder (default: results/report)"
    )
    report.add_argument(
        "--summary",
        nargs="?",
        const="results/SUMMARY.md",
        metavar="PATH",
        help="instead of a report, write the paper-claims summary (default PATH: results/SUMMARY.md) "
        "from the runs given, or from every run under --runs",
    )
    report.add_argument(
        "--docs",
        action="store_true",
        help="instead of a report, re-render the measured numbers of README.md, docs/protocols.md and "
        "results/README.md from results/runs (run in the repository root)",
    )
    report.add_argument("--check", action="store_true", help="with --docs: exit 1 if a document is stale")

    check = sub.add_parser("check", help="correctness matrix against torchdiffeq and analytic references")
    check.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    check.add_argument("--quick", action="store_true", help="a reduced matrix")

    data = sub.add_parser("data", help="fetch, import or verify data sets")
    data_sub = data.add_subparsers(dest="dataset_command", required=True)
    mnist = data_sub.add_parser("mnist", help="MNIST / Fashion-MNIST into the cache")
    mnist.add_argument("--dir", help="cache root (default: $NODEBENCH_DATA or ~/.cache/nodebench)")
    mnist.add_argument("--from", dest="from_dir", metavar="DIR", help="import IDX files from DIR")
    mnist.add_argument("--dataset", choices=["mnist", "fashion-mnist"], help="default: mnist")

    reproduce = sub.add_parser("reproduce", help="run every available workload at a preset, then the report")
    reproduce.add_argument("--preset", choices=presets, default="smoke")
    reproduce.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    reproduce.add_argument(
        "--out",
        type=_out_dir,
        default="results",
        help="results folder: runs in OUT/runs, report in OUT/report",
    )
    _executor_options(reproduce)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nodebench`` command.

    Arguments:
        argv: the arguments after the program name (``None``: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 success, 1 a run or check failed, 2 bad usage, 130 interrupted.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        if args.command == "run":
            return _cmd_run(args, argv)
        if args.command == "report":
            return _cmd_report(args)
        if args.command == "check":
            return _cmd_check(args)
        if args.command == "data":
            return _cmd_data(args)
        return _cmd_reproduce(args, argv)
    except _UsageError as exc:
        print(f"nodebench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, store.RunStateError) as exc:  # a bad path, an unreadable file or directory
        print(f"nodebench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
