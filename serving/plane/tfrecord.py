"""TFRecord files read with bounded framing, before any TensorFlow reader sees a byte.

Each record is ``uint64 length | uint32 masked CRC-32C of length | data | uint32 masked CRC-32C
of data`` (little-endian). TensorFlow's own reader trusts the length field: a 28-byte file that
claims a 1 TiB record makes it abort the process. Here the whole file is bounded by ``max_bytes``,
every length by what is left of the file, and both checksums are verified.
"""

import struct
from pathlib import Path

import google_crc32c

HEADER = struct.Struct("<QI")
FOOTER = struct.Struct("<I")
MASK_DELTA = 0xA282EAD8


class RecordError(ValueError):
    """The file is not a well-formed TFRecord file within the bounds."""


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC-32C of ``data``."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def read_records(path: Path, *, max_records: int, max_bytes: int) -> list[bytes]:
    """The records of the TFRecord file ``path``; RecordError naming the record and its offset
    when the file is over ``max_bytes``, holds more than ``max_records`` records, is truncated,
    or fails a checksum."""
    size = path.stat().st_size
    if size > max_bytes:
        raise RecordError(f"{size:,} bytes, over the {max_bytes:,} read")
    data = path.read_bytes()[:max_bytes]
    records, offset = [], 0
    while offset < len(data):
        where = f"record {len(records)} at byte {offset}"
        if len(records) == max_records:
            raise RecordError(f"more than {max_records} records; keep at most that many")
        if len(data) - offset < HEADER.size:
            raise RecordError(f"{where}: truncated header")
        length, length_crc = HEADER.unpack_from(data, offset)
        if masked_crc(data[offset : offset + 8]) != length_crc:
            raise RecordError(f"{where}: the length's checksum does not match (not a TFRecord?)")
        start = offset + HEADER.size
        if length > len(data) - start - FOOTER.size:
            raise RecordError(
                f"{where}: claims {length:,} bytes, the file has {len(data) - start:,} left"
            )
        record = data[start : start + length]
        (data_crc,) = FOOTER.unpack_from(data, start + length)
        if masked_crc(record) != data_crc:
            raise RecordError(f"{where}: the data's checksum does not match (corrupt)")
        records.append(record)
        offset = start + length + FOOTER.size
    return records
