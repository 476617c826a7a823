"""Copy the benchmark tables from docs/bench/*.md into README.md between their markers.

    python bench/update_readme.py        # after bench/quality.py and bench/estimator.py
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TABLES = ("quality", "estimator", "speed", "speed_cuda", "finetune")


def main() -> None:
    readme = REPO / "README.md"
    text = readme.read_text()
    for name in TABLES:
        src = REPO / "docs" / "bench" / f"{name}.md"
        if not src.exists():
            continue
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"README.md has no <!-- {name}:start --> / <!-- {name}:end --> markers")
        text = pattern.sub(lambda m, s=src: m.group(1) + s.read_text() + m.group(2), text)
    readme.write_text(text)


if __name__ == "__main__":
    main()
