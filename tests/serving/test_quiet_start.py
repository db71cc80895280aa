"""What `zoo serve` writes to a terminal: its own log lines, no framework start-up lines."""

import signal
import subprocess
import sys
import time

from helpers import free_port
from test_quiet_output import NOISE, zoo_env


def test_zoo_serve_logs_only_its_own_lines(make_repo):
    repo = make_repo([1])
    port = free_port()
    argv = [sys.executable, "-m", "zoo", "serve", "--model-repo", str(repo), "--port", str(port),
            "--rest-port", str(free_port()), "--metrics-port", "-1", "--workers", "1"]  # fmt: skip
    server = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=zoo_env())
    lines = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = server.stderr.readline()
            lines.append(line)
            if "Serving" in line or not line:
                break
    finally:
        server.send_signal(signal.SIGTERM)
        _, rest = server.communicate(timeout=60)
    output = "".join(lines) + rest
    assert any("Serving" in line for line in lines), output
    assert not NOISE.search(output), output
