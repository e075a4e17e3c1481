"""What the bot does, knowing nothing of any messenger."""
