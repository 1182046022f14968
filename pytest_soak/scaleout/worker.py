"""A Locust worker that replays its share of a pytest-soak timeline, as a program.

    python -m pytest_soak.scaleout.worker --master-host HOST [--master-port 5557]

It connects to the master (``scaleout/master.py``) like any Locust worker and waits for a job.
"""

from __future__ import annotations

import argparse
import sys

from locust import events
from locust.env import Environment

from pytest_soak.scaleout.locustfile import SoakUser, WorkerRelay


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_soak.scaleout.worker")
    parser.add_argument("--master-host", default="127.0.0.1", help="the master's address")
    parser.add_argument("--master-port", type=int, default=5557, help="the master's Locust port")
    args = parser.parse_args(argv)
    environment = Environment(user_classes=[SoakUser], events=events)
    runner = environment.create_worker_runner(args.master_host, args.master_port)
    WorkerRelay(runner)
    runner.greenlet.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
