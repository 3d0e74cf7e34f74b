"""Running as one of several: the state file (its format, ``_state_format``, and its
I/O and writer), the action history (``_history``), the Kubernetes Lease client and leader
election, sharding, and the lock that keeps two processes off one state file.

What the other layers use of it is exported here; the modules behind it are private.
"""

from typing import TYPE_CHECKING

from .._core import lazy_exports

if TYPE_CHECKING:
    from ._adoption import rules_elector
    from ._election import ActionRecord, LeaderElector
    from ._history import ActionHistory
    from ._kube import InCluster, in_cluster
    from ._persist import StateFile, StateWriter
    from ._shard import owned_rules, shard_of
    from ._state_lock import StateFileLock, holder

__all__ = [
    "ActionHistory",
    "ActionRecord",
    "InCluster",
    "LeaderElector",
    "StateFile",
    "StateFileLock",
    "StateWriter",
    "holder",
    "in_cluster",
    "owned_rules",
    "rules_elector",
    "shard_of",
]

if not TYPE_CHECKING:  # each name imported when first used
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "ActionHistory": "._history",
            "ActionRecord": "._election",
            "InCluster": "._kube",
            "LeaderElector": "._election",
            "StateFile": "._persist",
            "StateFileLock": "._state_lock",
            "StateWriter": "._persist",
            "holder": "._state_lock",
            "in_cluster": "._kube",
            "owned_rules": "._shard",
            "rules_elector": "._adoption",
            "shard_of": "._shard",
        },
    )
