"""Reads from the campaigns app, shaped as plain data (the admin home page's, for one)."""
