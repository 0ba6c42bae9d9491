"""DVC stage `extract@<dataset>`: videos -> person-centred frame folders (``pipeline.extract.stage``)."""
import sys

from pipeline.extract.stage import STAGE
from pipeline.stage.entry import run


def main(argv: list[str] | None = None) -> int:
    return run(STAGE, argv)


if __name__ == "__main__":
    sys.exit(main())
