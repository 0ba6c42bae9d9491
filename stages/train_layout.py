"""DVC stage `train_layout`: train the Layout GAN (``pipeline.training.stage``)."""
import sys

from pipeline.stage.entry import run
from pipeline.training.stage import STAGES_BY_NETWORK


def main(argv: list[str] | None = None) -> int:
    return run(STAGES_BY_NETWORK["layout"], argv)


if __name__ == "__main__":
    sys.exit(main())
