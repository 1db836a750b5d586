"""Scrapbook-style glue: a notebook records named values in its outputs; a test or a
pipeline reads them back from the executed ``.ipynb`` without parsing HTML.

``glue("placements", df)`` displays one output with the mimetype
``application/vnd.batchfed.glue+json`` (``{"name", "data"}``; DataFrames become JSON
records) and a one-line ``text/plain`` for people (JupyterLab has no renderer for the
glue type and shows the text). ``read(path)`` returns ``{name: data}``.

``python -m batchfed_lab.widgets NOTEBOOK NAME [COLUMN ...]`` prints one glued value as a
table (``make demo`` prints the quickstart's placements this way).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["MIME", "glue", "read"]

MIME = "application/vnd.batchfed.glue+json"


def _jsonable(value: Any) -> Any:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(value, pd.DataFrame):
        return json.loads(value.to_json(orient="records", date_format="iso", date_unit="us"))
    if pd is not None and isinstance(value, pd.Series):
        return json.loads(value.to_json(date_format="iso", date_unit="us"))
    return json.loads(json.dumps(value, default=str))


def glue(name: str, value: Any) -> None:
    """Record ``value`` under ``name`` in this cell's outputs."""
    from IPython.display import display

    data = _jsonable(value)
    size = f"{len(data)} rows" if isinstance(data, list) else type(value).__name__
    display({MIME: {"name": name, "data": data}, "text/plain": f"[glue] {name}: {size}"}, raw=True)


def read(path: str | Path | Any) -> dict[str, Any]:
    """``{name: data}`` of every glued value in an executed notebook (a path or a
    notebook node); a later glue of the same name wins."""
    if isinstance(path, (str, Path)):
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    else:
        nb = path
    out: dict[str, Any] = {}
    for cell in nb["cells"]:
        for o in cell.get("outputs", ()):
            data = o.get("data") or {}
            if MIME in data:
                item = data[MIME]
                if isinstance(item, str):  # nbformat may keep JSON mimetypes as text
                    item = json.loads(item)
                out[item["name"]] = item["data"]
    return out


def _main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m batchfed_lab.widgets NOTEBOOK NAME [COLUMN ...]", file=sys.stderr)
        return 2
    values = read(argv[0])
    if argv[1] not in values:
        print(f"error: {argv[0]} has no glued value {argv[1]!r} (it has: {', '.join(sorted(values)) or 'none'})", file=sys.stderr)
        return 1
    data = values[argv[1]]
    if isinstance(data, list) and data and isinstance(data[0], dict):
        import pandas as pd

        df = pd.DataFrame(data)
        cols = [c for c in argv[2:] if c in df.columns] or list(df.columns)
        print(df[cols].to_string(index=False))
    else:
        print(json.dumps(data, indent=2))
    return 0
