"""Development stack: a private Redis server and the processes `make run` and the tests start."""
