"""The Locust master with pytest-soak's control listener, as a program.

    python -m pytest_soak.scaleout.master [--bind HOST] [--port 5557] [--control-port 5558]

Workers connect to ``--port`` (Locust's own protocol); the controller (pytest with
``--soak-locust=HOST:CONTROL_PORT``) to ``--control-port``. Port 0 picks free ports. One JSON
line on stdout says which ports it listens on: ``{"master": 5557, "control": 5558}``.
"""

from __future__ import annotations

import argparse
import json
import sys

from locust import events
from locust.env import Environment

from pytest_soak.scaleout.locustfile import MasterControl, SoakUser
from pytest_soak.scaleout.protocol import CONTROL_PORT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_soak.scaleout.master")
    parser.add_argument("--bind", default="0.0.0.0", help="address to listen on (both ports)")
    parser.add_argument("--port", type=int, default=5557, help="Locust's port for the workers")
    parser.add_argument("--control-port", type=int, default=CONTROL_PORT, help="the controller's")
    args = parser.parse_args(argv)
    environment = Environment(user_classes=[SoakUser], events=events)
    runner = environment.create_master_runner(args.bind, args.port)
    control = MasterControl(runner, args.bind, args.control_port)
    print(json.dumps({"master": runner.server.port, "control": control.port}), flush=True)
    runner.greenlet.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
