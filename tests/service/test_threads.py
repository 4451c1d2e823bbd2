"""Every API worker and learner process runs its BLAS on one thread (service/threads.py):
checked in fresh processes, as gunicorn and `cbserve learner` start them."""
import json
import subprocess
import sys

import pytest

CHECK = """
import json, numpy
from threadpoolctl import threadpool_info
before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
{start}
after = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
print(json.dumps([before, after]))
"""


@pytest.mark.parametrize("start", [
    "from service.app import create_app\nfrom service.config import parse_config\n"
    "import redis\ncreate_app(parse_config({'service': {'allow_anonymous': True}, 'loops': {'l': {}}}), "
    "redis.Redis.from_url('{url}'))",
    "from service.learner import Learner\nfrom service.config import parse_config\nimport redis\n"
    "Learner(redis.Redis.from_url('{url}'), parse_config({'loops': {'l': {}}}))",
])
def test_a_worker_and_a_learner_use_one_blas_thread(redis_server, start):
    code = CHECK.replace("{start}", start.replace("{url}", redis_server.url))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "2"})
    assert out.returncode == 0, out.stderr
    before, after = json.loads(out.stdout.strip().splitlines()[-1])
    assert before == [2] and after == [1]
