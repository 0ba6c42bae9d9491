"""DVC stage `register@<dataset>`: scan one registered dataset into data/registry/<dataset>.json (``pipeline.datasets.stage``)."""
import sys

from pipeline.datasets.stage import STAGE
from pipeline.stage.entry import run


def main(argv: list[str] | None = None) -> int:
    return run(STAGE, argv)


if __name__ == "__main__":
    sys.exit(main())
