"""Print every figure issue 3 asks of the embedded toy-world model (the full evaluation, a few minutes).

python benchmarks/toyworld_eval.py [--model DIR] [--quick] [--json]
"""

from __future__ import annotations

import sys

from studio.toyworld.evaluate import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
