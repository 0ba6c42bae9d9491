"""DVC stage `parse@<dataset>`: 18-class ATR parsing per frame (``pipeline.parsing.stage``)."""
import sys

from pipeline.parsing.stage import STAGE
from pipeline.stage.entry import run


def main(argv: list[str] | None = None) -> int:
    return run(STAGE, argv)


if __name__ == "__main__":
    sys.exit(main())
