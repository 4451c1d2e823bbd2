"""The host's CPU counters, to tell a slow run from a slow host.

On a virtual machine the hypervisor can take ("steal") the VM's cores for other
guests; a benchmark run during heavy steal measures the neighbours as much as the
code. The benchmarks report the steal share of every run beside its figures.
"""
from __future__ import annotations


def cpu_times() -> list | None:
    """The host's aggregate CPU counters from /proc/stat (None where there is none)."""
    try:
        with open("/proc/stat") as fh:
            return [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def steal_share(before, after) -> float | None:
    """Share of the host's CPU time the hypervisor took (steal) between two samples:
    user, nice, system, idle, iowait, irq, softirq, steal are the first eight fields."""
    if not before or not after or len(before) < 8 or len(after) < 8:
        return None
    delta = [b - a for a, b in zip(before[:8], after[:8])]
    return round(delta[7] / max(1, sum(delta)), 3)
