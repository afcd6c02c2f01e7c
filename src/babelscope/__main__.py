"""``python -m babelscope`` (also under ``torchrun`` / ``accelerate launch``)."""

import sys

from babelscope.cli.main import main

sys.exit(main())
