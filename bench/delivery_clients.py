"""bench/delivery.py's WebSocket clients, all in this one process: raw asyncio protocols (the handshake and the
frames by hand, a few bytes operations per message) so that the clients cost the machine as little as possible.

    python bench/delivery_clients.py PORT PATH CLIENTS SLOW EXPECTED SECONDS

connects CLIENTS clients (plus SLOW clients that stop reading once connected), prints `ready`, reads `go ORIGIN`
on stdin (the epoch second the run's START happens at), then receives until every client has EXPECTED events or
SECONDS after ORIGIN (plus a grace of a few seconds), and prints one JSON line: events each client got, messages
lost (control "dropped" counts), close frames, and the delivery latency (receipt - the event's timestamp as the
wall clock ran it) over every event of every client: p50, p99, max in ms.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import sys
import time

START_HOUR = 0  # the runs start at 2026-01-01T00:00:00Z and last less than an hour
GRACE = 5.0
BUCKETS = 100_000  # latency histogram: 0.1 ms buckets up to 10 s


class Client(asyncio.Protocol):
    def __init__(self, path: str, port: int, origin: list[float], histogram: list[int], slow: bool) -> None:
        self.path, self.port, self.origin, self.histogram, self.slow = path, port, origin, histogram, slow
        self.buffer = bytearray()
        self.handshaken = asyncio.get_running_loop().create_future()
        self.events = self.dropped = self.closes = 0
        self.transport: asyncio.Transport | None = None

    def itself(self) -> Client:
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                        .encode())

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self.buffer
        buffer += data
        if not self.handshaken.done():
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            assert buffer.startswith(b"HTTP/1.1 101"), bytes(buffer[:200])
            del buffer[:end + 4]
            self.handshaken.set_result(None)
            if self.slow:
                assert self.transport is not None
                self.transport.pause_reading()  # reads nothing more: the server's queue for it fills up
                return
        position, size = 0, len(buffer)
        origin, histogram = self.origin[0], self.histogram
        while size - position >= 2:
            opcode, length = buffer[position] & 0x0F, buffer[position + 1] & 0x7F
            start = position + 2
            if length == 126:
                if size - start < 2:
                    break
                length = struct.unpack_from("!H", buffer, start)[0]
                start += 2
            elif length == 127:
                if size - start < 8:
                    break
                length = struct.unpack_from("!Q", buffer, start)[0]
                start += 8
            if size - start < length:
                break
            end = start + length
            if opcode == 1:
                at = buffer.find(b'"timestamp":"', start, end)
                if at >= 0:
                    t = at + 13  # 2026-01-01THH:MM:SS.mmmZ
                    seconds = (int(buffer[t + 11:t + 13]) - START_HOUR) * 3600 + int(buffer[t + 14:t + 16]) * 60 \
                        + int(buffer[t + 17:t + 19]) + int(buffer[t + 20:t + 23]) / 1000
                    bucket = int((now - origin - seconds) * 10_000)
                    histogram[min(max(bucket, 0), BUCKETS - 1)] += 1
                    self.events += 1
                else:  # a control message
                    message = json.loads(bytes(buffer[start:end]))
                    self.dropped += message.get("count", 0)
            elif opcode == 8:
                self.closes += 1
            elif opcode == 9:  # a ping: answer it (masked, as a client must)
                assert self.transport is not None
                mask = os.urandom(4)
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(buffer[start:end]))
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + mask + payload)
            position = end
        del buffer[:position]


def percentile(histogram: list[int], share: float) -> float:
    total = sum(histogram)
    if not total:
        return 0.0
    wanted, seen = share * total, 0
    for bucket, count in enumerate(histogram):
        seen += count
        if seen >= wanted:
            return (bucket + 1) / 10
    return BUCKETS / 10


async def main(port: int, path: str, clients: int, slow: int, expected: int, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    origin = [0.0]
    histogram = [0] * BUCKETS
    connections = []
    for number in range(clients + slow):
        client = Client(path, port, origin, histogram, number >= clients)
        await loop.create_connection(client.itself, "127.0.0.1", port)
        await client.handshaken
        connections.append(client)
    print("ready", flush=True)
    command = (await asyncio.to_thread(sys.stdin.readline)).split()
    origin[0] = float(command[1])
    deadline = origin[0] + seconds + GRACE
    fast = connections[:clients]
    while time.time() < deadline and any(c.events + c.dropped < expected and not c.closes for c in fast):
        await asyncio.sleep(0.01)
    for client in connections:
        if client.transport is not None:
            client.transport.abort()
    print(json.dumps({"events": [c.events for c in fast], "dropped": sum(c.dropped for c in fast),
                      "closes": sum(c.closes for c in fast), "p50": percentile(histogram, 0.50),
                      "p99": percentile(histogram, 0.99), "max": percentile(histogram, 1.0)}), flush=True)


if __name__ == "__main__":
    port_text, path_text, clients_text, slow_text, expected_text, seconds_text = sys.argv[1:7]
    asyncio.run(main(int(port_text), path_text, int(clients_text), int(slow_text), int(expected_text),
                     float(seconds_text)))
