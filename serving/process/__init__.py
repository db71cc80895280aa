"""The server process: start-up and shutdown, the event loop, worker processes sharing the
ports, and the process limits it raises."""
