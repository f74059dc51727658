"""`make lecture`: execute every notebook headless (full mode unless the environment says otherwise)
and render each to HTML, printing one line per notebook with its run time.

    python -m tools.render --out build/lecture notebooks/01_*.ipynb ...
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter


def render(nb_path: Path, out_dir: Path, timeout: int) -> float:
    """Execute ``nb_path`` in a fresh kernel (cwd = its folder), write ``out_dir/<name>.html``; return seconds."""
    nb = nbformat.read(nb_path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(nb_path.parent)}}
    )
    client.execute()
    seconds = time.perf_counter() - start
    body, _ = HTMLExporter().from_notebook_node(nb)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{nb_path.stem}.html").write_text(body, encoding="utf-8")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute notebooks and render them to HTML.")
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("build/lecture"))
    parser.add_argument("--timeout", type=int, default=3600, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    failed = 0
    total = 0.0
    for nb_path in args.notebooks:
        try:
            seconds = render(nb_path, args.out, args.timeout)
        except CellExecutionError as err:
            failed += 1
            first = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            print(f"FAILED  {nb_path.name}: {first}", flush=True)
            continue
        total += seconds
        print(f"{seconds:8.1f} s  {nb_path.name} -> {args.out / (nb_path.stem + '.html')}", flush=True)
    print(f"{total:8.1f} s  in all, {len(args.notebooks) - failed} rendered, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
