"""``python -m cfgsched``."""

from cfgsched.cli import main

main()
