"""RabbitMQ for the tests: rabbitmqctl, and a vhost of the tests' own."""
from __future__ import annotations

import subprocess
import uuid


def rabbitmqctl(*args) -> str:
    """``rabbitmqctl -q args``; what it printed."""
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True,
                          timeout=60).stdout


class Vhost:
    def __init__(self):
        self.name = f"evreg-test-{uuid.uuid4().hex[:8]}"

    def create(self):
        rabbitmqctl("add_vhost", self.name)
        rabbitmqctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        return self

    def delete(self):
        try:
            rabbitmqctl("delete_vhost", self.name)
        except Exception:
            pass

    @property
    def amqp_uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:5672/{self.name}"
