"""Where the corpus of public rule files and rule tests is (``shared/compat/corpus`` beside
the checkout, as CI has it), or None: tests of it skip without it."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).parents[1]
CORPUS = next(
    (
        parent / "shared" / "compat" / "corpus"
        for parent in REPO.parents
        if (parent / "shared" / "compat" / "corpus").is_dir()
    ),
    None,
)
