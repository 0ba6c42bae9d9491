"""DVC stage `layout@<dataset>`: 6-region layouts, background plates, QA sheets (``pipeline.layout.stage``)."""
import sys

from pipeline.layout.stage import STAGE
from pipeline.stage.entry import run


def main(argv: list[str] | None = None) -> int:
    return run(STAGE, argv)


if __name__ == "__main__":
    sys.exit(main())
