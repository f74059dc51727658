"""The grader's command line: ``python -m lecture_grading.grader VERB ...`` (the Makefile's targets call it).

    build [NAME ...]            student notebooks and tests from the masters        (otter: assign)
    grade PATH [--csv ...]      grade a notebook or a folder, each in a sandbox      (otter: run / grade)
    gradescope [NAME ...]       the Gradescope autograder zip of each assignment     (otter: generate)
    run-autograder              what the zip's run_autograder runs, on Gradescope   (otter: run_autograder)
    check-install               import everything the grader needs, print versions

A student's ``check("qN")`` is not here: it is ``lecture_grading.Checks``, which needs none of this package.
Paths default to the repository's layout, relative to the current folder: masters in ``assignments/``, builds
in ``dist/assignments/``, zips in ``dist/gradescope/``.  Exit status: 0 when everything asked was done; 1
when a submission could not be graded (unreadable, or grading failed: then no score is written for it);
2 when nothing could start (no sandbox, nothing to grade, a bad option).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lecture_grading import limits as limits_
from lecture_grading.grader import build, exports, gradescope, reports, sandbox
from lecture_grading.grader.grade import FAILED, GRADED, Grade, grade_many
from lecture_utils import atomic

MASTERS = Path("assignments")
DIST = Path("dist") / "assignments"


def submissions(path: Path) -> list[Path]:
    """The notebooks to grade: ``path`` itself, or every .ipynb under the folder (symbolic links skipped)."""
    if path.is_dir():
        found = sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and p.is_file()
                       and not p.is_symlink())
        if not found:
            raise ValueError(f"no .ipynb submissions under {path}")
        return found
    if path.suffix != ".ipynb" or not path.is_file():
        raise ValueError(f"{path} is not a notebook (.ipynb) or a folder of notebooks")
    return [path]


def report_path(folder: Path, g: Grade) -> Path:
    import re

    return Path(folder) / (re.sub(r"[^\w.-]+", "__", g.name.removesuffix(".ipynb")) + ".txt")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lecture_grading.grader", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="student notebooks and tests from the masters")
    b.add_argument("names", nargs="*", help="assignments to build (default: all), e.g. 01_initialization")
    b.add_argument("--masters", type=Path, default=MASTERS)
    b.add_argument("--dist", type=Path, default=DIST)

    g = sub.add_parser("grade", help="grade a submission (.ipynb) or a folder of them, each in a sandbox")
    g.add_argument("path", type=Path)
    g.add_argument("--csv", type=Path, help="write one row per submission to this CSV file (atomically)")
    g.add_argument("--reports", type=Path, help="write one report per submission into this folder")
    g.add_argument("--jobs", type=int, default=1, help="submissions graded at the same time")
    g.add_argument("--retry-failed", action="store_true",
                   help="grade only the submissions whose row in --csv is not graded; keep the other rows")
    limits_.add_arguments(g)
    g.add_argument("--threads", type=int, default=1, help="CPU threads of each sandbox")
    g.add_argument("--sandbox", default="bubblewrap", choices=["bubblewrap", "container", "unsafe"],
                   help="how each submission is isolated (default bubblewrap; container: as root inside a "
                        "per-submission container, see assignments/README.md)")
    g.add_argument("--unsafe", action="store_true", help="grade WITHOUT a sandbox (same as --sandbox unsafe)")
    g.add_argument("--masters", type=Path, default=MASTERS)
    g.add_argument("--dist", type=Path, default=DIST)
    g.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    g.add_argument("-v", "--verbose", action="store_true", help="show hidden tests' messages (not for students)")

    z = sub.add_parser("gradescope", help="build each assignment's Gradescope autograder zip")
    z.add_argument("names", nargs="*", help="assignments (default: all)")
    z.add_argument("--masters", type=Path, default=MASTERS)
    z.add_argument("--dist", type=Path, default=DIST)
    z.add_argument("--out", type=Path, default=Path("dist") / "gradescope")
    src = z.add_mutually_exclusive_group(required=True)
    src.add_argument("--project", type=Path, help="build this package's wheel from this checkout")
    src.add_argument("--wheel", type=Path, help="use this wheel of the package")
    z.add_argument("--hidden-visibility", default="after_published", choices=exports.VISIBILITY,
                   help="when students see the hidden tests' results (default after_published)")
    limits_.add_arguments(z)

    r = sub.add_parser("run-autograder", help="grade /autograder/submission as Gradescope runs it")
    r.add_argument("--root", type=Path, default=Path("/autograder"))

    sub.add_parser("check-install", help="import what grading needs and print the versions")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"build": _build, "grade": _grade, "gradescope": _gradescope, "run-autograder": _run_autograder,
                "check-install": _check_install}[args.command](args)
    except (ValueError, FileNotFoundError, sandbox.SandboxUnavailable) as e:
        print(e, file=sys.stderr)
        return 2


def _build(args) -> int:
    for out in build.build(args.masters, args.dist, args.names):
        print(f"built {out.name}: {out / 'student' / (out.name + '.ipynb')}")
    return 0


def _grade(args) -> int:
    name = "unsafe" if args.unsafe else args.sandbox
    backend = sandbox.choose(name)
    if name == "unsafe":
        print(sandbox.UNSAFE_WARNING, file=sys.stderr)
    paths = submissions(args.path)
    folder = args.path if args.path.is_dir() else None
    private = tuple(p for p in (args.dist, args.masters, folder or args.path.parent, args.reports, args.csv) if p)

    def label(gr: Grade) -> Grade:
        if folder is not None:  # students' files often share a name: tell them apart by their folder
            gr.label = gr.submission.relative_to(folder).as_posix()
        return gr

    kept: list[dict] = []
    if args.retry_failed:
        if not args.csv:
            raise ValueError("--retry-failed needs the --csv of the earlier run")
        rows = exports.read_csv(args.csv)
        names = {p: label(Grade(p, "")).name for p in paths}
        kept = [rows[n] for n in names.values() if n in rows and rows[n].get("status") == GRADED]
        paths = [p for p in paths if names[p] not in {r["submission"].removeprefix("'") for r in kept}]
        print(f"--retry-failed: {len(kept)} submissions keep their rows, {len(paths)} are graded again")
    progress = None if args.no_progress or len(paths) < 2 else reports.Progress(len(paths))
    done: list[Grade] = []

    def finished(gr: Grade) -> None:  # after its sandbox has ended: only now is anything written
        done.append(label(gr))
        if args.reports:
            atomic.write_text(report_path(args.reports, gr), reports.report(gr) + "\n")
        if args.csv:
            exports.write_csv(done, args.csv, kept)
        if progress:
            progress.update(gr)

    grades = grade_many(paths, args.jobs, on_done=finished, dist=args.dist, masters_dir=args.masters,
                        backend=backend, options=sandbox.Options(threads=args.threads, private=private),
                        **limits_.from_arguments(args)) if paths else []
    for gr in grades:
        print(reports.report(label(gr), args.verbose))
    if args.csv:
        exports.write_csv(grades, args.csv, kept)
        print(f"wrote {args.csv}")
    if len(grades) > 1 or any(not gr.graded for gr in grades):
        loud = any(gr.status == FAILED for gr in grades)
        print(reports.summary(grades), file=sys.stderr if loud else sys.stdout)
    return 1 if any(not gr.graded for gr in grades) else 0


def _gradescope(args) -> int:
    import tempfile

    chosen = build.build(args.masters, args.dist, args.names)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or gradescope.build_wheel(args.project, Path(tmp))
        for out in chosen:
            z = gradescope.build_zip(out / "autograder" / "tests.json", wheel, args.out, args.hidden_visibility,
                                     limits_.from_arguments(args))
            print(f"built {z}")
    return 0


def _run_autograder(args) -> int:
    return gradescope.run(args.root)


def _check_install(args) -> int:
    import importlib.metadata as md

    import IPython
    import safetensors
    import torch

    from lecture_grading.grader.sandbox import bubblewrap, container

    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, IPython {IPython.__version__}, "
          f"safetensors {safetensors.__version__}, init-lecture {md.version('init-lecture')}")
    print(f"bubblewrap: {bubblewrap.problem() or 'works'}; container backend: {container.problem() or 'works'}")
    return 0
