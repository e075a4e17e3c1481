"""agency handlers (see issue 3)."""
