"""``python -m pmengine``: the ``pmengine`` command line."""

import sys

from pmengine.cli import main

if __name__ == "__main__":
    sys.exit(main())
