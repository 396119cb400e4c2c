"""A minimal Kafka wire client over a raw socket, for tests that need exact bytes and codes.

Real clients hide what the broker answered (they retry, map errors, negotiate versions), so
protocol tests speak the wire format directly. Only the few requests the tests need are here,
each at one fixed, non-flexible version that current Kafka still accepts:

    ApiVersions v0 (and any version, raw), Metadata v4, Produce v3, Fetch v4

Frame: int32 size | request header v1 (api_key int16, api_version int16, correlation_id int32,
client_id nullable string) | body. Response: int32 size | correlation_id int32 | body.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

import crc32c

API_PRODUCE = 0
API_FETCH = 1
API_METADATA = 3
API_API_VERSIONS = 18

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TOPIC_EXCEPTION = 17
UNSUPPORTED_VERSION = 35

CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

# Responses larger than this are a test bug or a broker bug; either way stop reading.
RESPONSE_BYTES_MAX = 64 * 1024 * 1024


class Writer:
    def __init__(self):
        self.buf = bytearray()

    def int8(self, v): self.buf += struct.pack(">b", v); return self
    def int16(self, v): self.buf += struct.pack(">h", v); return self
    def int32(self, v): self.buf += struct.pack(">i", v); return self
    def int64(self, v): self.buf += struct.pack(">q", v); return self
    def uint32(self, v): self.buf += struct.pack(">I", v); return self
    def raw(self, b): self.buf += b; return self

    def string(self, s: str | None):
        if s is None:
            return self.int16(-1)
        b = s.encode()
        return self.int16(len(b)).raw(b)

    def bytes_(self, b: bytes | None):
        if b is None:
            return self.int32(-1)
        return self.int32(len(b)).raw(b)

    def uvarint(self, v: int):
        while True:
            byte = v & 0x7F
            v >>= 7
            if v:
                self.buf.append(byte | 0x80)
            else:
                self.buf.append(byte)
                return self

    def varint(self, v: int):  # zigzag, as in record fields
        return self.uvarint((v << 1) ^ (v >> 63))

    def compact_string(self, s: str):
        b = s.encode()
        return self.uvarint(len(b) + 1).raw(b)

    def bytes(self) -> bytes:
        return bytes(self.buf)


class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"short response: need {n} bytes at {self.pos}, have {len(self.data)}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def int8(self): return struct.unpack(">b", self.take(1))[0]
    def int16(self): return struct.unpack(">h", self.take(2))[0]
    def int32(self): return struct.unpack(">i", self.take(4))[0]
    def int64(self): return struct.unpack(">q", self.take(8))[0]
    def uint32(self): return struct.unpack(">I", self.take(4))[0]

    def string(self) -> str | None:
        n = self.int16()
        return None if n < 0 else self.take(n).decode()

    def bytes_(self) -> bytes | None:
        n = self.int32()
        return None if n < 0 else self.take(n)

    def array(self, item) -> list | None:
        n = self.int32()
        return None if n < 0 else [item() for _ in range(n)]

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            b = self.take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def varint(self) -> int:
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    def remaining(self) -> int:
        return len(self.data) - self.pos


# -- record batches (magic 2) ----------------------------------------------------------------


@dataclass
class Batch:
    base_offset: int
    last_offset_delta: int
    codec: int
    record_count: int
    crc_ok: bool
    producer_id: int
    base_timestamp: int


def encode_batch(records: list[tuple[bytes | None, bytes | None]], base_ts_ms: int | None = None) -> bytes:
    """An uncompressed, non-idempotent v2 batch of (key, value) records."""
    ts = int(time.time() * 1000) if base_ts_ms is None else base_ts_ms
    body = Writer()
    for delta, (key, value) in enumerate(records):
        rec = Writer().int8(0).varint(0).varint(delta)
        for part in (key, value):
            if part is None:
                rec.varint(-1)
            else:
                rec.varint(len(part)).raw(part)
        rec.varint(0)  # headers
        body.varint(len(rec.buf)).raw(rec.bytes())
    after_crc = (
        Writer().int16(0).int32(len(records) - 1).int64(ts).int64(ts)
        .int64(-1).int16(-1).int32(-1).int32(len(records)).raw(body.bytes()).bytes()
    )
    head = Writer().int32(-1).int8(2).uint32(crc32c.crc32c(after_crc)).bytes()
    return Writer().int64(0).int32(len(head) + len(after_crc)).raw(head).raw(after_crc).bytes()


def decode_batches(data: bytes) -> list[Batch]:
    """Batch headers of a fetched record set; a trailing partial batch is allowed and ignored."""
    batches = []
    r = Reader(data)
    while r.remaining() >= 12:
        base_offset = r.int64()
        length = r.int32()
        if r.remaining() < length:
            break
        body = Reader(r.take(length))
        body.int32()  # partition leader epoch
        magic = body.int8()
        assert magic == 2, f"magic {magic} batch at offset {base_offset}"
        crc = body.uint32()
        crc_ok = crc32c.crc32c(body.data[body.pos:]) == crc
        attributes = body.int16()
        last_delta = body.int32()
        base_ts = body.int64()
        body.int64()  # max timestamp
        producer_id = body.int64()
        body.int16()
        body.int32()
        count = body.int32()
        batches.append(Batch(base_offset, last_delta, attributes & 0x7, count, crc_ok, producer_id, base_ts))
    return batches


# -- the connection --------------------------------------------------------------------------


class Connection:
    def __init__(self, bootstrap: str, timeout_s: float = 10):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.correlation_id = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_exact(self, n: int) -> bytes:
        chunks = []
        while n:
            chunk = self.sock.recv(min(n, 1 << 20))
            if not chunk:
                raise ConnectionError("connection closed by broker")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def recv_frame(self) -> bytes:
        size = struct.unpack(">i", self.recv_exact(4))[0]
        assert 0 <= size <= RESPONSE_BYTES_MAX, f"response frame size {size}"
        return self.recv_exact(size)

    def send_request(self, api_key: int, version: int, body: bytes, flexible: bool = False) -> int:
        self.correlation_id += 1
        header = Writer().int16(api_key).int16(version).int32(self.correlation_id).string("eddy-compat")
        if flexible:
            header.uvarint(0)  # request header v2: empty tagged fields
        frame = header.bytes() + body
        self.send_raw(struct.pack(">i", len(frame)) + frame)
        return self.correlation_id

    def request(self, api_key: int, version: int, body: bytes, flexible: bool = False) -> Reader:
        """Sends one request and returns a Reader over the response body (after the
        correlation id, which must match). Flexible response headers are not handled."""
        cid = self.send_request(api_key, version, body, flexible)
        r = Reader(self.recv_frame())
        got = r.int32()
        assert got == cid, f"correlation id {got}, expected {cid}"
        return r

    def closed_within(self, timeout_s: float) -> bool:
        """True when the broker closes (EOF or reset) within timeout_s; bytes it sends first
        are read and dropped."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except (ConnectionResetError, BrokenPipeError):
                return True
            except socket.timeout:
                return False
        return False

    # -- typed requests ----------------------------------------------------------------------

    def api_versions(self) -> tuple[int, dict[int, tuple[int, int]]]:
        """ApiVersions v0: (error_code, {api_key: (min, max)})."""
        return parse_api_versions_v0(self.request(API_API_VERSIONS, 0, b""))

    def metadata(self, topics: list[str] | None, allow_auto_create: bool) -> dict:
        """Metadata v4: {"brokers": [(id, host, port)], "topics": {name: (error, [partition
        (error, index, leader)])}}."""
        w = Writer()
        if topics is None:
            w.int32(-1)
        else:
            w.int32(len(topics))
            for t in topics:
                w.string(t)
        w.int8(1 if allow_auto_create else 0)
        r = self.request(API_METADATA, 4, w.bytes())
        r.int32()  # throttle
        brokers = r.array(lambda: (r.int32(), r.string(), r.int32(), r.string())[:3])
        r.string()  # cluster id
        r.int32()  # controller id

        def partition():
            err, index, leader = r.int16(), r.int32(), r.int32()
            r.array(r.int32)
            r.array(r.int32)
            return err, index, leader

        def topic():
            err, name, _internal = r.int16(), r.string(), r.int8()
            return name, (err, r.array(partition))

        return {"brokers": brokers, "topics": dict(r.array(topic))}

    def produce(self, topic: str, partition: int, batch: bytes, acks: int = -1,
                timeout_ms: int = 10_000) -> tuple[int, int]:
        """Produce v3 of one batch: (error_code, base_offset)."""
        w = (Writer().string(None).int16(acks).int32(timeout_ms)
             .int32(1).string(topic).int32(1).int32(partition).bytes_(batch))
        r = self.request(API_PRODUCE, 3, w.bytes())
        results = r.array(lambda: (r.string(), r.array(lambda: (r.int32(), r.int16(), r.int64(), r.int64()))))
        (_name, parts), = results
        (_index, error, base_offset, _log_append_time), = parts
        return error, base_offset

    def fetch(self, topic: str, partition: int, offset: int, max_wait_ms: int = 0,
              min_bytes: int = 1, max_bytes: int = 4 * 1024 * 1024) -> tuple[int, int, bytes]:
        """Fetch v4 of one partition: (error_code, high_watermark, record bytes)."""
        w = (Writer().int32(-1).int32(max_wait_ms).int32(min_bytes).int32(max_bytes).int8(0)
             .int32(1).string(topic).int32(1).int32(partition).int64(offset).int32(max_bytes))
        r = self.request(API_FETCH, 4, w.bytes())
        r.int32()  # throttle

        def part():
            index, error, hw, _lso = r.int32(), r.int16(), r.int64(), r.int64()
            r.array(lambda: (r.int64(), r.int64()))  # aborted transactions
            return index, error, hw, r.bytes_() or b""

        topics = r.array(lambda: (r.string(), r.array(part)))
        parts = [p for name, ps in topics or [] if name == topic for p in ps or [] if p[0] == partition]
        assert len(parts) == 1, f"fetch {topic}[{partition}]: response has {topics!r}"
        (_index, error, hw, records), = parts
        return error, hw, records

    def fetch_batches(self, topic: str, partition: int, offset: int) -> list[Batch]:
        # Data is there, so a short max wait returns at once (Tansu answers max_wait_ms=0 with
        # no partitions at all).
        error, _hw, records = self.fetch(topic, partition, offset, max_wait_ms=100)
        assert error == NONE, f"fetch {topic}[{partition}]@{offset}: error {error}"
        return decode_batches(records)


def parse_api_versions_v0(r: Reader) -> tuple[int, dict[int, tuple[int, int]]]:
    error = r.int16()
    versions = r.array(lambda: (r.int16(), r.int16(), r.int16())) or []
    return error, {k: (lo, hi) for k, lo, hi in versions}
