#!/usr/bin/env python3
"""Redis's CPU per published message, by number of subscribers: the store's unit cost in
docs/SCALING.md.

Starts a Redis of its own (redis-server from PATH, on a free port, nothing on disk), opens
SUBSCRIBERS connections subscribed to one channel (what each API replica holds: one subscription
to `{prefix}:live`), and publishes MESSAGES messages of PAYLOAD bytes at RATE per second on one
connection, as the projector's write script does. Redis's own CPU time (utime + stime from
/proc/<pid>/stat) over the publishing window, divided by the messages, is the cost of one
publish fanned out to that many subscribers. Every subscriber must receive every message, or
the figure is not reported.

    loadtest/redis-fanout-cost.py                 # 10, 100 and 500 subscribers
    SUBSCRIBERS="10 100" MESSAGES=20000 loadtest/redis-fanout-cost.py

Prints one line per subscriber count: messages, Redis CPU microseconds per message, and per
message per subscriber.
"""

import os
import selectors
import socket
import subprocess
import sys
import time

PAYLOAD = int(os.environ.get("PAYLOAD", "400"))
MESSAGES = int(os.environ.get("MESSAGES", "20000"))
RATE = float(os.environ.get("RATE", "2000"))
COUNTS = [int(n) for n in os.environ.get("SUBSCRIBERS", "10 100 500").split()]
CHANNEL = b"bench:live"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def command(*args):
    out = b"*%d\r\n" % len(args)
    for arg in args:
        arg = arg if isinstance(arg, bytes) else str(arg).encode()
        out += b"$%d\r\n%s\r\n" % (len(arg), arg)
    return out


def connect(port):
    for _ in range(200):
        try:
            return socket.create_connection(("127.0.0.1", port))
        except OSError:
            time.sleep(0.02)
    sys.exit(f"redis-server never listened on {port}")


def measure(port, pid, subscribers):
    subs = []
    selector = selectors.DefaultSelector()
    for _ in range(subscribers):
        s = connect(port)
        s.sendall(command(b"SUBSCRIBE", CHANNEL))
        s.setblocking(False)
        subs.append(s)
        selector.register(s, selectors.EVENT_READ)
    # The publisher learns how many received each message: wait until all are subscribed.
    publisher = connect(port)
    while True:
        publisher.sendall(command(b"PUBSUB", b"NUMSUB", CHANNEL))
        reply = publisher.recv(4096)
        if reply.rstrip().endswith(b":%d" % subscribers):
            break
        time.sleep(0.05)
    received = {s.fileno(): 0 for s in subs}
    message_bytes = len(command(b"message", CHANNEL, b"x" * PAYLOAD))
    subscribe_reply = len(command(b"subscribe", CHANNEL)) - 4  # ":1\r\n" is an integer
    expected = MESSAGES * message_bytes
    payload = b"x" * PAYLOAD
    pending = b""

    def drain(timeout):
        for key, _ in selector.select(timeout):
            try:
                data = key.fileobj.recv(1 << 20)
            except BlockingIOError:
                continue
            received[key.fileobj.fileno()] += len(data)

    cpu_before = cpu_seconds(pid)
    began = time.monotonic()
    for n in range(MESSAGES):
        pending += command(b"PUBLISH", CHANNEL, payload)
        due = began + (n + 1) / RATE
        if len(pending) > 64 * 1024 or time.monotonic() >= due:
            publisher.sendall(pending)
            pending = b""
        while time.monotonic() < due:
            drain(max(0.0, due - time.monotonic()))
    publisher.sendall(pending)
    deadline = time.monotonic() + 60
    # Each subscriber first got its SUBSCRIBE reply (about 30 bytes), then every message.
    while min(received.values()) < expected + subscribe_reply and time.monotonic() < deadline:
        drain(0.1)
    elapsed = time.monotonic() - began
    cpu = cpu_seconds(pid) - cpu_before
    complete = min(received.values()) >= expected + subscribe_reply
    for s in subs:
        s.close()
    publisher.close()
    return cpu, elapsed, complete


def main():
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--client-output-buffer-limit", "pubsub 0 0 0"],
        stdout=subprocess.DEVNULL,
    )
    try:
        connect(port).close()
        print(f"redis-server {port}: {MESSAGES} messages of {PAYLOAD} bytes at {RATE:.0f}/s")
        for subscribers in COUNTS:
            cpu, elapsed, complete = measure(port, server.pid, subscribers)
            if not complete:
                print(f"{subscribers:>5} subscribers: not every subscriber got every message")
                continue
            per_message = cpu / MESSAGES * 1e6
            print(
                f"{subscribers:>5} subscribers: redis CPU {cpu:.2f} s over {elapsed:.1f} s, "
                f"{per_message:.1f} us/message, {per_message / subscribers:.2f} us/message/subscriber"
            )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
