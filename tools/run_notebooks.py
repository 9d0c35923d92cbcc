#!/usr/bin/python3
"""Execute Jupyter notebooks headless on Deno's kernel and save executed copies.

Used by `deno task notebooks` (lib/cli/notebooks.ts); needs Debian's python3-nbclient
(and python3-nbconvert for --html). Exits non-zero on the first cell error, printing the cell.
"""
import argparse
import os
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("notebooks", nargs="+")
    p.add_argument("--out", required=True, help="folder for executed copies")
    p.add_argument("--kernel", default="deno")
    p.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    p.add_argument("--html", action="store_true", help="also export each executed notebook to HTML")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    failed = 0
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        name = os.path.basename(path)
        start = time.time()
        print(f"== {name}: executing {len(nb.cells)} cells on kernel '{args.kernel}'", flush=True)
        client = NotebookClient(
            nb,
            timeout=args.timeout,
            kernel_name=args.kernel,
            resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}},
        )
        try:
            client.execute()
            status = "ok"
        except CellExecutionError as e:
            status = "FAILED"
            failed += 1
            print(str(e)[-4000:], file=sys.stderr, flush=True)
        out_path = os.path.join(args.out, name)
        nbformat.write(nb, out_path)
        print(f"== {name}: {status} in {time.time() - start:.1f} s -> {out_path}", flush=True)
        if args.html:
            from nbconvert import HTMLExporter
            body, _ = HTMLExporter().from_notebook_node(nb)
            html_path = out_path[: -len(".ipynb")] + ".html"
            with open(html_path, "w", encoding="utf-8") as f:
                f.write(body)
            print(f"== {name}: HTML -> {html_path}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
