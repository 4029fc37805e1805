"""Library functions behind the commands: diff, plot, explain, lint."""
