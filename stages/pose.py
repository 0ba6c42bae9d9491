"""DVC stage `pose@<dataset>`: BODY_25 keypoints and person masks per video (``pipeline.pose.stage``)."""
import sys

from pipeline.pose.stage import STAGE
from pipeline.stage.entry import run


def main(argv: list[str] | None = None) -> int:
    return run(STAGE, argv)


if __name__ == "__main__":
    sys.exit(main())
