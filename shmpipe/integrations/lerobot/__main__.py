"""`python -m shmpipe.integrations.lerobot ARGS...`: as `shmpipe lerobot-record ARGS...`."""

from shmpipe.integrations.lerobot.command import main

raise SystemExit(main())
