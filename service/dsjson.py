"""The decision log layout, owned by :mod:`bandits.dsjson` (pure, shared with replay)."""
from bandits.dsjson import (ID_NAMESPACE, ORIG, VERSION, chosen, decision_event, decode,  # noqa: F401
                            dumps, loads, state, timestamp, to_feedback, with_label)
