"""Credential distribution in chat: /envoyer (e-mails), /relancer (reminders) and /pdf (letters
to print), one conversation shared by the three (`conversation`).

- `state`: the conversation's states, callback data and the distribution pending in the chat;
- `texts`: what a preview and a summary say;
- `preview`: the shared steps — scope, preview and its confirmation, cancelling, stale buttons;
- `protection`: the school's document password and how long letters PDFs stay in the chat;
- `delivery`: a letters PDF sent, then recorded or withdrawn, and its ZIP of documents;
- `progress`: following a batch of e-mails until its summary, across restarts;
- `emails`, `paper`, `reminders`: /envoyer, /pdf, /relancer;
- `conversation`: the ConversationHandler and the handlers of this feature.

Submodules import each other by their full name (never this package), so that this package can
gather them.
"""

from __future__ import annotations

from handlers.distribution.conversation import build_handlers
from handlers.distribution.progress import setup

__all__ = ["build_handlers", "setup"]
