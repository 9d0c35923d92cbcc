#!/usr/bin/python3
"""Execute Jupyter notebooks headless on Deno's kernel and save executed copies.

Used by `deno task notebooks` (lib/cli/notebooks.ts); needs Debian's python3-nbclient
(and python3-nbconvert for --html). A failing cell is printed and the notebook counted as
failed (exit 1 at the end); <out>/summary.json lists each notebook's status and time.
"""
import argparse
import base64
import json
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
    summary = []
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
        seconds = time.time() - start
        print(f"== {name}: {status} in {seconds:.1f} s -> {out_path}", flush=True)
        entry = {"name": name[: -len(".ipynb")], "status": status, "seconds": round(seconds, 1),
                 "ipynb": name}
        if args.html:
            from nbconvert import HTMLExporter
            # Offline viewers (and headless browsers) cannot load Vega's JavaScript: the HTML
            # copy shows the static SVG each chart carries; the .ipynb keeps the Vega-Lite spec
            # for JupyterLab and VS Code.
            import copy
            html_nb = copy.deepcopy(nb)
            for cell in html_nb.cells:
                for output in cell.get("outputs", []):
                    data = output.get("data", {})
                    if "image/svg+xml" in data:
                        for mime in [m for m in data if m.startswith("application/vnd.vegalite")]:
                            del data[mime]
                        # nbconvert 6 passes inline SVG through an HTML cleaner that strips its
                        # drawing elements; an <img> with a data URL keeps the chart intact.
                        svg = data.pop("image/svg+xml")
                        svg = "".join(svg) if isinstance(svg, list) else svg
                        b64 = base64.b64encode(svg.encode("utf-8")).decode("ascii")
                        data["text/html"] = f'<img src="data:image/svg+xml;base64,{b64}">'
            exporter = HTMLExporter()
            body, _ = exporter.from_notebook_node(html_nb)
            html_path = out_path[: -len(".ipynb")] + ".html"
            with open(html_path, "w", encoding="utf-8") as f:
                f.write(body)
            print(f"== {name}: HTML -> {html_path}", flush=True)
            entry["html"] = os.path.basename(html_path)
        summary.append(entry)
        # Written after each notebook so that an interrupted run still has an index.
        with open(os.path.join(args.out, "summary.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
