"""Run a chapter's code cells in one process and rewrite its stated numbers to the computed
values (a maintainer's tool, after data change: review the diff, then the prose around it).

    python tools/restate.py book/10_decay_study.ipynb [--dry-run]
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from IPython.core.interactiveshell import InteractiveShell

from monosem_lib.book import prose


def main(path: str, dry: bool = False) -> int:
    path = str(Path(path).resolve())
    nb = json.loads(Path(path).read_text())
    os.chdir(Path(path).resolve().parent)  # where the build runs it
    shell = InteractiveShell.instance()
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] != "code" or "check_prose" in src or "google.colab" in src:
            continue
        result = shell.run_cell(src, silent=True)
        if not result.success:
            print("cell failed:", src[:80])
            return 1
    values = prose.glued()
    changed = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])

        def fix(m: re.Match) -> str:
            nonlocal changed
            key, fmt = m.group(2), m.group(3) or ""
            if key not in values:
                print("no value for", key)
                return m.group(0)
            want = prose.stated_text(values[key], fmt)
            if want != m.group(1):
                print(f"{key}: {m.group(1)} -> {want}")
                changed += 1
                return f"{want}<!-- {key}{':' + fmt if fmt else ''} -->"
            return m.group(0)

        new = re.sub(r"(-?[0-9][0-9,.]*)<!-- ([^:>\s]+)(?::([^>\s]+))? -->", fix, text)
        lines = new.split("\n")
        cell["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]
    if not dry:
        Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    print(changed, "changed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], "--dry-run" in sys.argv))
