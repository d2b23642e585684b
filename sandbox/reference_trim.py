"""Write `resources.json`: the reference catalogue trimmed to the resources the sandbox serves (stdlib only).

    python -m sandbox.reference_trim /work/shared/exact-catalogue.json

The reference is picqer/exact-php-client@8b35057 (MIT), field names and types read from its docblocks; the output
keeps, per served resource, its url, primary key, methods, class and fields [name, type], plus the
`rows_are_lines_grouped_by` of line-row sync resources. Run it again when the reference or the served set changes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sandbox.entities import RESOURCES, served_paths

__all__ = ["dumps", "main", "trim"]

_SOURCE = (
    "picqer/exact-php-client@8b35057 (MIT): field names and types from its docblocks,"
    " via ../shared/exact-catalogue.json; trimmed to the resources the sandbox serves by sandbox/reference_trim.py"
)
_KEPT = ("url", "class", "primary_key", "methods", "rows_are_lines_grouped_by")


def trim(catalogue: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    by_url = {r["url"].lower(): r for r in catalogue["resources"]}
    missing = [p for p in paths if p.lower() not in by_url]
    if missing:
        raise SystemExit(f"not in the reference: {', '.join(missing)}")
    resources = []
    for path in sorted(paths, key=str.lower):
        source = by_url[path.lower()]
        kept = {k: source[k] for k in _KEPT if k in source}
        kept["fields"] = [[f["name"], f["type"]] for f in source["fields"]]
        resources.append(kept)
    return {"source": _SOURCE, "resources": resources}


def dumps(trimmed: dict[str, Any]) -> str:
    """One line per resource header and per field: small diffs when the reference changes."""
    out = ["{", f' "source": {json.dumps(trimmed["source"])},', ' "resources": [']
    for n, res in enumerate(trimmed["resources"]):
        head = json.dumps({k: v for k, v in res.items() if k != "fields"}, ensure_ascii=False)
        fields = ",\n".join(f"   {json.dumps(f, ensure_ascii=False)}" for f in res["fields"])
        tail = "," if n < len(trimmed["resources"]) - 1 else ""
        out.append(f'  {head[:-1]}, "fields": [\n{fields}\n  ]}}{tail}')
    out += [" ]", "}"]
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m sandbox.reference_trim CATALOGUE.json\n")
        return 2
    catalogue = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    RESOURCES.write_text(dumps(trim(catalogue, served_paths())), encoding="utf-8")
    sys.stderr.write(f"wrote {RESOURCES}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
