"""Provisional passwords and argon2id hashes: drawing, hashing in batches, verifying.

No clear password leaves this module except as the return value of the function that drew it.
"""

from __future__ import annotations

import os
import secrets
import threading
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import Argon2Error

# Upper-case letters and digits without the look-alikes 0/O and 1/I (docs/PRODUCT.md). 24 + 8 = 32
# symbols, so each character carries exactly 5 bits: 40 bits per password, which is plenty for
# a one-time secret that an online attacker can only try through a rate-limited portal.
# (No lower case at all, so « l » cannot be misread either.)
PROVISIONAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PROVISIONAL_LENGTH = 8

# OWASP's minimum for argon2id (m = 19 MiB, t = 2, p = 1): enough for random 40-bit secrets
# that expire after 3 months, and cheap enough to hash a whole school's letters: ≈ 26 ms per
# hash here, ≈ 90 hashes/s over the 2 cores of these machines. Never lower it to win a benchmark.
PROVISIONAL_HASHER = PasswordHasher(
    time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)
# Passwords families choose are human and long-lived: RFC 9106's second recommended profile
# (m = 64 MiB, t = 3, p = 4, also argon2-cffi's default). Measured on these 2-core machines:
# ≈ 125 ms per verify when idle, ≈ 190 ms while other work competes for the cores: under the
# ~250 ms a login can afford. The parameters are in every encoded hash, so they can be raised
# later: `needs_rehash` tells, and the next login rehashes.
CHOSEN_HASHER = PasswordHasher(
    time_cost=3, memory_cost=65536, parallelism=4, hash_len=32, salt_len=16, type=Type.ID
)

# Below this many passwords, handing chunks to the pool costs more than it saves.
_INLINE_BATCH = 8
_ARGON2ID_PREFIX = "$argon2id$"

_pool: ThreadPoolExecutor | None = None
_pool_workers = 1
_pool_lock = threading.Lock()


def generate_provisional_password() -> str:
    """A fresh provisional password (« BUNZ57DM ») from the operating system's CSPRNG."""
    return "".join(secrets.choice(PROVISIONAL_ALPHABET) for _ in range(PROVISIONAL_LENGTH))


def canonical_provisional_input(text: str) -> str:
    """What a family typed for a provisional password, as it was drawn: « bunz 57dm » → BUNZ57DM.

    The alphabet is upper case only, so accepting lower case and stray spaces costs no entropy.
    """
    return "".join(text.split()).upper()


def _normalized(password: str) -> str:
    # The same password typed on two devices may arrive composed or decomposed (« é » vs
    # « e + ◌́ »); NIST SP 800-63B asks for NFKC before hashing. ASCII passes unchanged.
    return unicodedata.normalize("NFKC", password)


def hash_provisional_password(password: str) -> str:
    """The argon2id hash of one provisional password, at the provisional parameters."""
    return PROVISIONAL_HASHER.hash(_normalized(password))


def hash_chosen_password(password: str) -> str:
    """The argon2id hash of a password a family chose, at the stronger parameters."""
    return CHOSEN_HASHER.hash(_normalized(password))


def _hash_chunk(passwords: Sequence[str]) -> list[str]:
    return [PROVISIONAL_HASHER.hash(_normalized(password)) for password in passwords]


def _usable_cpus() -> int:
    # Respect a container's or taskset's CPU affinity, not just the machine's core count.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _hash_pool() -> tuple[ThreadPoolExecutor, int]:
    global _pool, _pool_workers
    with _pool_lock:
        if _pool is None:
            _pool_workers = _usable_cpus()
            _pool = ThreadPoolExecutor(max_workers=_pool_workers, thread_name_prefix="argon2")
        return _pool, _pool_workers


def shutdown_hash_pool() -> None:
    """Stop the hashing workers (they are started again on demand)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)


def hash_provisional_passwords(passwords: Sequence[str]) -> list[str]:
    """Hashes of `passwords`, in the same order, spread over every core for large batches.

    Threads, not processes: argon2-cffi releases the GIL while it hashes, so threads use every
    core (measured: 2.0× the single-core rate on 2 cores, the same as a process pool) without
    a process pool's costs: no start-up, no pickling, no re-import of `__main__` in spawned
    workers (which fails outright when the main module is not a file), no fork of a threaded
    bot process.
    """
    if len(passwords) < _INLINE_BATCH:
        return _hash_chunk(passwords)
    pool, workers = _hash_pool()
    # A few chunks per worker: few hand-offs, yet no worker idles at the end of the batch.
    size = max(1, -(-len(passwords) // (workers * 4)))
    chunks = [passwords[start : start + size] for start in range(0, len(passwords), size)]
    return [digest for chunk in pool.map(_hash_chunk, chunks) for digest in chunk]


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches the argon2id `password_hash`; False on any mismatch or bad hash.

    argon2 compares the digests in constant time; a malformed or missing hash is a plain False,
    never an exception, so a login page cannot be made to crash on one.
    """
    if not password_hash or not password_hash.startswith(_ARGON2ID_PREFIX):
        return False
    try:
        # Any hasher verifies any argon2id hash: the parameters are read from the hash itself.
        return PROVISIONAL_HASHER.verify(password_hash, _normalized(password))
    except (Argon2Error, ValueError, TypeError):
        # VerifyMismatchError, VerificationError, InvalidHashError; encoding errors.
        return False


def needs_rehash(password_hash: str, *, chosen: bool) -> bool:
    """Whether `password_hash` was made with other parameters than today's for its kind."""
    hasher = CHOSEN_HASHER if chosen else PROVISIONAL_HASHER
    try:
        return hasher.check_needs_rehash(password_hash)
    except (Argon2Error, ValueError):
        return True


def hash_parameters(password_hash: str) -> tuple[int, int, int]:
    """(memory KiB, time cost, parallelism) encoded in an argon2 hash, for checks and reports."""
    parameters = extract_parameters(password_hash)
    return parameters.memory_cost, parameters.time_cost, parameters.parallelism


_STRONG_KINDS_12 = 4
_STRONG_KINDS_14 = 3


def chosen_password_is_strong(password: str) -> bool:
    """Whether a password a family chose meets the CNIL 2022 recommendation (docs/PRODUCT.md).

    At least 12 characters mixing upper case, lower case, digits and special characters, or at
    least 14 mixing upper case, lower case and digits (the CNIL's examples 1 and 2).
    """
    if len(password) > 256:
        # Nobody types that much; it is a pasted document or a probe.
        return False
    kinds = sum(
        (
            any(char.isupper() for char in password),
            any(char.islower() for char in password),
            any(char.isdigit() for char in password),
            any(not char.isalnum() for char in password),
        )
    )
    if len(password) >= 14 and kinds >= _STRONG_KINDS_14:
        # Example 2 requires upper, lower and digits; a special character may replace one.
        return True
    return len(password) >= 12 and kinds >= _STRONG_KINDS_12
