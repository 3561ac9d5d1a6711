from __future__ import annotations

from django.dispatch import Signal

# Sent after a run's snapshot is committed, with `run` (the EtlRun), `feed` and `taken_on`.
# The read side listens to it (analytics drops its data version, so cached answers move at once);
# ingestion knows nothing of readers.
snapshot_committed = Signal()
