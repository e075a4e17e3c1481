"""Gettext catalogs (vi, en), read from their .po files at start-up."""
