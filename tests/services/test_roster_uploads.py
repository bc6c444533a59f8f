"""ONDE files sent in a chat wait in the data folder between the two uploads: an import left
behind across a restart (whose conversation timeout is lost) does not keep them for ever."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bot.services.roster import UPLOAD_LIFETIME, discard_stale_uploads
from bot.services.roster.uploads import save_upload


def test_uploads_older_than_their_lifetime_are_deleted(tmp_path: Path) -> None:
    old = save_upload(data_dir=tmp_path, telegram_user_id=1, data=b"eleves")
    fresh = save_upload(data_dir=tmp_path, telegram_user_id=2, data=b"responsables")
    outside = tmp_path / "educonnect.db"
    outside.write_bytes(b"")
    long_ago = time.time() - UPLOAD_LIFETIME.total_seconds() - 60
    for path in (old, outside):
        os.utime(path, (long_ago, long_ago))

    assert discard_stale_uploads(data_dir=tmp_path) == 1

    assert not old.exists() and fresh.exists() and outside.exists()
    assert discard_stale_uploads(data_dir=tmp_path / "nowhere") == 0
