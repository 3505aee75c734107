"""The gateway's RPC replies survive a broker that drops the connection."""
from types import SimpleNamespace

from eventlet.event import Event

from shared.messaging import ReliableReplyListener, ReliableRpcProxy


class DroppedConnection:
    def ack_message(self, message):
        raise ConnectionResetError(104, "Connection reset by peer")


def test_a_reply_whose_ack_fails_still_reaches_its_caller_and_ends_nothing():
    listener = ReliableReplyListener()
    listener.queue_consumer = DroppedConnection()
    listener._reply_events = {}
    waiting = listener._reply_events["call-1"] = Event()
    message = SimpleNamespace(properties={"correlation_id": "call-1"})
    listener.handle_message({"result": 42, "error": None}, message)        # does not raise
    assert waiting.wait() == {"result": 42, "error": None}
    listener.handle_message({"result": 1}, SimpleNamespace(properties={"correlation_id": "late"}))


def test_the_gateway_proxies_use_it():
    assert isinstance(ReliableRpcProxy.rpc_reply_listener, ReliableReplyListener)
