"""Redis, the only store: keys, Lua scripts, and every call the service makes to it.

- :mod:`~service.store.keys`: every key name; :mod:`~service.store.stats`: every counter;
- :mod:`~service.store.client`: connecting, and Redis errors mapped to ``StoreError``;
- :class:`LoopLog`: reading a loop (log, rewards, models, counters) by its name;
- :class:`LoopStore`: the API's writes (log a decision, join a reward, sessions, sweep);
- :class:`LearnerStore`: the learner's lock and consumer group;
- :class:`~service.store.registry.Registry`: model versions, the serving pointer, the
  audit stream, and the learner's publication.
"""
from .client import connect, redis_from_env
from .learning import LearnerStore
from .log import LoopLog, joined_rewards, stream_entries
from .loop import LoopStore

__all__ = ["LearnerStore", "LoopLog", "LoopStore", "connect", "joined_rewards",
           "redis_from_env", "stream_entries"]
