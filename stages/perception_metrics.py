"""DVC stage `perception_metrics`: pose PCK and layout mIoU on the demo ground truth (``pipeline.evaluation.perception``)."""
import sys

from pipeline.evaluation.perception import STAGE
from pipeline.stage.entry import run


def main(argv: list[str] | None = None) -> int:
    return run(STAGE, argv)


if __name__ == "__main__":
    sys.exit(main())
