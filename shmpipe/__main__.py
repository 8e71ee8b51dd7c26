"""`python -m shmpipe`: the `shmpipe` command."""

from shmpipe.cli import main

raise SystemExit(main())
