"""The CNN soak of issue 23: ``bench/soak.py --model cnn`` (kept so the
command in earlier notes still works).

    PYTHONPATH=. python bench/soak_cnn.py --seconds 600
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soak import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["--model", "cnn"] + sys.argv[1:]))
