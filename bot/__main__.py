"""`python -m bot …` runs the operator's command line, exactly like `educonnect-bot …`."""

from bot.cli import main

if __name__ == "__main__":
    main()
