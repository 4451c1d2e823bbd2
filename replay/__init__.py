"""cbserve replay: offline evaluation of policies on logged decisions (issue 4; not built yet)."""
