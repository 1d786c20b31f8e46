"""``python -m pytest_optcheck``: the ``optcheck`` command without the console script on PATH."""

from .cli import main

raise SystemExit(main())
