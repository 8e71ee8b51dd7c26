"""Bridges to other projects' code. Each imports the recorder; nothing imports them."""
