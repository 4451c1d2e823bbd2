"""scripts/fault_cluster.py: a primary killed under load, in both durability modes."""
import json

from scripts.fault_cluster import main


def test_fault_cluster_prints_both_modes_and_replicated_loses_nothing(capsys):
    assert main(["--before", "0.5", "--threads", "2"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(figures) == {"primary", "replicated"}
    for f in figures.values():
        assert f["acknowledged"] > 0 and f["failed"] > 0 and f["recovered_s"] is not None
    assert figures["replicated"]["lost"] == 0
