"""Storage: SQLModel tables and plain functions over them, each taking `session` by keyword."""
