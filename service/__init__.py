"""cbserve service: Flask API, Redis store, reward join, learner (issue 3; not built yet)."""
