"""kiennghi: the running program (configuration, channels, scheduler, command line)."""
