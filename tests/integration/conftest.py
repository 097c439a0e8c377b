"""Fixtures of the integration tier shared by several modules."""

from tests.cli_support import home, run  # noqa: F401 (fixtures: `vbios` in-process, a home)
