"""``make run``: the demo exporter and metric-reader watching it, in one terminal.

The exporter's ``demo_queue_depth{queue="orders"}`` rises past 80 and falls back every
45 s; metric-reader reads it straight from the exporter (no Prometheus needed) and, once the
breach has lasted 5 s, runs the bundled ``log_action`` plugin, again every 10 s while the
breach lasts, and resolves when the value falls back. Within a minute the log shows a
breach go pending, fire, repeat and resolve. Stop it with Ctrl-C.

Any setting can be changed from the environment, e.g. ``LOG_FORMAT=json make run``. The
status page is on port 9180, or on a free port when 9180 is taken (the demo says which);
``LISTEN_ADDRESS=:9200 make run`` chooses one, ``LISTEN_ADDRESS=off`` serves none.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from demo_exporter import serve


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


server = serve(0)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_port}/metrics"
print(f"demo exporter: {url}  (demo_queue_depth rises past 80 every 45 s)", flush=True)

env = {
    "SCRAPE_URL": url,
    "METRIC_NAME": "demo_queue_depth",
    "LABEL_FILTERS": 'queue=~"orders|emails"',
    "THRESHOLD": ">80",
    "THRESHOLD_DURATION": "5s",
    "BACKOFF_DELAY": "10s",
    "POLLING_INTERVAL": "1s",
    "ACTION_PLUGIN": "log_action",
}
env.update(os.environ)


if "LISTEN_ADDRESS" not in os.environ:
    port = 9180
    if not _free(port):
        with socket.socket() as probe:
            probe.bind(("", 0))
            port = probe.getsockname()[1]
        print(
            f"port 9180 is taken: serving on port {port} instead "
            "(LISTEN_ADDRESS=:PORT make run chooses one, LISTEN_ADDRESS=off serves none)",
            flush=True,
        )
    env["LISTEN_ADDRESS"] = f":{port}"
    print(f"status page: http://127.0.0.1:{port}/", flush=True)
service = subprocess.Popen([sys.executable, "-m", "metric_reader"], env=env)
try:
    sys.exit(service.wait())
except KeyboardInterrupt:
    # Ctrl-C reached the service too (same process group): it stops by itself.
    sys.exit(service.wait())
