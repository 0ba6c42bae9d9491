"""DVC stage `evaluate`: REMOT and baselines on every test split (``pipeline.evaluation.stage``)."""
import sys

from pipeline.evaluation.stage import STAGE
from pipeline.stage.entry import run


def main(argv: list[str] | None = None) -> int:
    return run(STAGE, argv)


if __name__ == "__main__":
    sys.exit(main())
