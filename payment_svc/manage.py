#!/usr/bin/env python
"""Django's command-line utility for the payment service."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.manage import main  # noqa: E402

if __name__ == "__main__":
    main("payment")
