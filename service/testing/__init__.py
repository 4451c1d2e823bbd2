"""The harness the tests and the scripts share: real ``redis-server`` and gunicorn
processes, the production topology, load generators and workloads, host CPU figures.

Not used by the service itself; nothing here starts unless a test or a script asks."""
