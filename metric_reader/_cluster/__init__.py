"""Running as one of several: the state file (its format, ``_state_format``, and its
I/O and writer), the Kubernetes Lease client and leader election, sharding, and the lock that
keeps two processes off one state file.

What the other layers use of it is exported here; the modules behind it are private.
"""

from ._adoption import rules_elector
from ._election import ActionRecord, LeaderElector
from ._kube import InCluster, in_cluster
from ._persist import StateFile, StateWriter
from ._shard import owned_rules, shard_of
from ._state_lock import StateFileLock, holder

__all__ = [
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
