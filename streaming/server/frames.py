"""RFC 6455 server-to-client text frames, encoded once and shared by every viewer."""


def encode_text_frame(text: str) -> bytes:
    """The RFC 6455 server-to-client frame (FIN, text, unmasked) carrying `text`."""
    payload = text.encode("utf-8")
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 65536:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload


def count_frames(data: bytes) -> int:
    """How many whole unmasked frames `data` holds (frames written back to back)."""
    count, at, end = 0, 0, len(data)
    while at + 2 <= end:
        size = data[at + 1] & 0x7F
        at += 2
        if size == 126:
            size, at = int.from_bytes(data[at : at + 2], "big"), at + 2
        elif size == 127:
            size, at = int.from_bytes(data[at : at + 8], "big"), at + 8
        at += size
        if at > end:
            break
        count += 1
    return count
