"""The records of an offline W&B run's `run-*.wandb` file, read without W&B's service.

The file is W&B's transaction log: a 7-byte header (":W&B", magic 0xBEE1, version 0), then
LevelDB's log format: blocks of 32 KiB, each record's chunks headed by a CRC-32, a length and a
type (full, first, middle, last); each whole record is a serialized `wandb_internal_pb2.Record`.
wandb 0.31 ships no Python reader (its Go core writes and syncs the file), so this is one.
"""
import struct
import zlib
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32768
HEADER = struct.Struct("<4sHB")
CHUNK = struct.Struct("<IHB")
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> list:
    data = path.read_bytes()
    ident, magic, version = HEADER.unpack_from(data)
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), (ident, magic, version)
    records, pending, offset = [], b"", HEADER.size
    while offset + CHUNK.size <= len(data):
        if BLOCK - offset % BLOCK < CHUNK.size:  # a block's tail too short for a chunk header is padding
            offset += BLOCK - offset % BLOCK
            continue
        checksum, length, kind = CHUNK.unpack_from(data, offset)
        payload = data[offset + CHUNK.size:offset + CHUNK.size + length]
        offset += CHUNK.size + length
        if kind == 0 and length == 0:  # zero padding at the end of the file
            break
        assert zlib.crc32(bytes([kind]) + payload) & 0xFFFFFFFF == checksum, f"bad chunk at {offset} in {path}"
        pending = payload if kind in (FULL, FIRST) else pending + payload
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records
