"""`make bench`: run every bench/*.py in turn; each prints its table and writes its JSON.

    .venv/bin/python bench/run_all.py [NAME ...]     # e.g. run_all.py sandbox lsp

Benchmarks run one at a time (the machine has two cores). The exit code is the number of
benchmarks that failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name
                     and not p.name.startswith("_"))
    if argv:
        wanted = {name.removesuffix(".py") for name in argv}
        unknown = wanted - {p.stem for p in scripts}
        if unknown:
            print(f"no such benchmark: {', '.join(sorted(unknown))} "
                  f"(have: {', '.join(p.stem for p in scripts)})", file=sys.stderr)
            return 2
        scripts = [p for p in scripts if p.stem in wanted]
    failed: list[str] = []
    for script in scripts:
        print(f"\n== bench/{script.name}", flush=True)
        started = time.monotonic()
        code = subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode
        print(f"-- bench/{script.name}: {'ok' if code == 0 else f'FAILED ({code})'} in "
              f"{time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return len(failed)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
