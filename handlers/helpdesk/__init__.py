"""The help desk in the chat: families' guided help and requests (`conversation`, `guided`,
`filing`, `family_requests`), the directors' `/demandes` and answers (`director`), and telling
each side what the other did (`followup`). `feature` wires them into the application.

This `__init__` imports nothing, so that other features can use `followup` without loading the
whole help desk (the distribution's confirmations record their answers through it).
"""
