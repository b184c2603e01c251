"""Copies the dashboard's pinned libraries from node_modules/ into web/vendor/ (run by `make setup`).

The page loads ES modules straight from its own origin with no bundler and no import map (an import map
is an inline script, which the site's CSP forbids), so the one bare import among them is rewritten to a
relative path here.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = ROOT / "node_modules"
VENDOR = ROOT / "web" / "vendor"
# vendored name → (source under node_modules, {text to replace: replacement})
FILES: dict[str, tuple[str, dict[str, str]]] = {
    "preact.js": ("preact/dist/preact.mjs", {}),
    "preact-hooks.js": ("preact/hooks/dist/hooks.mjs", {'from"preact"': 'from"./preact.js"'}),
    "htm.js": ("htm/dist/htm.module.js", {}),
    "uplot.js": ("uplot/dist/uPlot.esm.js", {}),
    "uplot.css": ("uplot/dist/uPlot.min.css", {}),
}
LICENSES = {"preact": "preact/LICENSE", "htm": "htm/LICENSE", "uplot": "uplot/LICENSE"}


def main() -> int:
    shutil.rmtree(VENDOR, ignore_errors=True)
    (VENDOR / "licenses").mkdir(parents=True)
    for name, (source, rewrites) in FILES.items():
        text = (NODE_MODULES / source).read_text(encoding="utf-8")
        for old, new in rewrites.items():
            if old not in text:
                print(f"✗ {source}: expected {old!r} to rewrite; was the package updated?", file=sys.stderr)
                return 1
            text = text.replace(old, new)
        (VENDOR / name).write_text(text, encoding="utf-8")
    for package, source in LICENSES.items():
        shutil.copyfile(NODE_MODULES / source, VENDOR / "licenses" / f"{package}.txt")
    print(f"vendored {len(FILES)} files into {VENDOR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
