"""`python -m shmpipe`: the `shmpipe` command."""

from shmpipe.tools.cli import main

raise SystemExit(main())
