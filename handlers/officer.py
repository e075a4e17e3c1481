"""officer handlers (see issue 3)."""
