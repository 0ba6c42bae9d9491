"""DVC stage `demo_data`: generate the procedural demo dataset (``pipeline.demo_data.stage``)."""
import sys

from pipeline.demo_data.stage import STAGE
from pipeline.stage.entry import run


def main(argv: list[str] | None = None) -> int:
    return run(STAGE, argv)


if __name__ == "__main__":
    sys.exit(main())
