"""DVC stage `flow@<dataset>`: optical flow t -> t-1 with its validity mask (``pipeline.flow.stage``)."""
import sys

from pipeline.flow.stage import STAGE
from pipeline.stage.entry import run


def main(argv: list[str] | None = None) -> int:
    return run(STAGE, argv)


if __name__ == "__main__":
    sys.exit(main())
