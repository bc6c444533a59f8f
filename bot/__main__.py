"""`python -m bot …` and the console script `educonnect-bot …`: the operator's command line.

Starting builds ≈ 200,000 long-lived objects (SQLAlchemy, pydantic, Telegram's classes) and
the garbage collector would walk them again and again while they are made: ≈ 0.4 s, a fifth of
every start. It is paused while the command line is imported, then what the imports made is
frozen: no later collection walks it again, for the life of the process."""

import gc

gc.disable()

from bot.cli import main  # noqa: E402  (imported while the collector is paused: the point)

gc.freeze()
gc.enable()

if __name__ == "__main__":
    main()
