"""DVC stage `shards`: WebDataset shards of temporal windows (``pipeline.shards.stage``)."""
import sys

from pipeline.shards.stage import STAGE
from pipeline.stage.entry import run


def main(argv: list[str] | None = None) -> int:
    return run(STAGE, argv)


if __name__ == "__main__":
    sys.exit(main())
