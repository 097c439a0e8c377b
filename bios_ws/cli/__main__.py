"""`python -m bios_ws.cli`: the `vbios` command."""

from bios_ws.cli import main

raise SystemExit(main())
