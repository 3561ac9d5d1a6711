from __future__ import annotations

from django.dispatch import Signal

# Sent after a run's snapshot is committed, with `run` (the EtlRun), `feed` and `taken_on`.
# The read side listens to it (cache warm-up, precomputation); ingestion knows nothing of readers.
snapshot_committed = Signal()
