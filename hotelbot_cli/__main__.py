"""Allow ``python -m hotelbot_cli``."""

from hotelbot_cli.cli.app import main

main()
