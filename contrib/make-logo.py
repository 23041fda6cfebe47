#!/usr/bin/python3
"""make-logo.py - draws signatures/logo.png, the eVisit signature logo.

Uses only the Python standard library (zlib, struct): a rounded blue
badge with a white video-camera glyph and the word "eVisit" built from
strokes, anti-aliased by 4x4 supersampling.  Deterministic: the same
script always writes the same bytes, so the file's hash is stable.

Usage: contrib/make-logo.py [OUTPUT]   (default signatures/logo.png)
"""
import math
import struct
import sys
import zlib

WIDTH, HEIGHT = 200, 60
SAMPLES = 4                      # per axis, for anti-aliasing
BLUE = (0x1F, 0x5F, 0xA8)
WHITE = (0xFF, 0xFF, 0xFF)


def in_round_rect(x, y, x0, y0, x1, y1, r):
    """True when (x, y) lies in the rectangle with corners rounded by r."""
    if x < x0 or x > x1 or y < y0 or y > y1:
        return False
    cx = min(max(x, x0 + r), x1 - r)
    cy = min(max(y, y0 + r), y1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def in_convex(x, y, pts):
    """True when (x, y) lies in the convex polygon pts (either winding)."""
    sign = 0
    for i, (ax, ay) in enumerate(pts):
        bx, by = pts[(i + 1) % len(pts)]
        cross = (bx - ax) * (y - ay) - (by - ay) * (x - ax)
        if cross != 0:
            s = 1 if cross > 0 else -1
            if sign and s != sign:
                return False
            sign = s
    return True


def near_segment(x, y, ax, ay, bx, by, half):
    """True when (x, y) is within half of the segment a-b (a capsule)."""
    dx, dy = bx - ax, by - ay
    t = ((x - ax) * dx + (y - ay) * dy) / float(dx * dx + dy * dy or 1)
    t = min(max(t, 0.0), 1.0)
    px, py = ax + t * dx, ay + t * dy
    return (x - px) ** 2 + (y - py) ** 2 <= half * half


def near_arc(x, y, cx, cy, rx, ry, half, keep):
    """True when (x, y) is on the elliptical ring around (cx, cy) and its
    angle (degrees, screen coordinates: 0 right, 90 down) passes keep."""
    dx, dy = (x - cx) / rx, (y - cy) / ry
    d = math.hypot(dx, dy)
    if abs(d - 1.0) * (rx + ry) / 2.0 > half:
        return False
    return keep(math.degrees(math.atan2(dy, dx)))


# The word, in pixels: baseline 43, x-height 21, cap height 29, stroke 4.
BASE, XH, CAP, HALF = 43.0, 21.0, 29.0, 2.1


def letter_e(x, y, left):
    cx, cy, rx, ry = left + 8.5, BASE - XH / 2, 8.5, XH / 2
    if near_segment(x, y, cx - rx, cy, cx + rx, cy, HALF * 0.9):
        return True
    return near_arc(x, y, cx, cy, rx, ry, HALF, lambda a: not 8 < a < 50)


def letter_v(x, y, left):
    top, bottom = BASE - CAP, BASE
    return (near_segment(x, y, left + 1.5, top, left + 11, bottom, HALF)
            or near_segment(x, y, left + 11, bottom, left + 20.5, top, HALF))


def letter_i(x, y, left):
    cx = left + 2.2
    dot = (x - cx) ** 2 + (y - (BASE - XH - 6)) ** 2 <= (HALF + 0.5) ** 2
    return dot or near_segment(x, y, cx, BASE - XH, cx, BASE, HALF)


def letter_s(x, y, left):
    rx, ry = 6.5, XH / 4
    cx = left + 7
    upper = near_arc(x, y, cx, BASE - 3 * XH / 4, rx, ry, HALF * 0.9,
                     lambda a: not -25 < a < 90)
    lower = near_arc(x, y, cx, BASE - XH / 4, rx, ry, HALF * 0.9,
                     lambda a: -90 <= a <= 155)
    return upper or lower


def letter_t(x, y, left):
    cx = left + 4.5
    return (near_segment(x, y, cx, BASE - CAP + 2, cx, BASE, HALF)
            or near_segment(x, y, left, BASE - XH, left + 10, BASE - XH, HALF * 0.9))


SHIFT = 9.0                      # centres the drawing on the badge
WORD = [(letter_e, 76), (letter_v, 96), (letter_i, 119), (letter_s, 128),
        (letter_i, 146), (letter_t, 155)]


def white_at(x, y):
    """The white parts: camera body, camera lens and the letters."""
    x -= SHIFT
    if in_round_rect(x, y, 16, 19, 47, 41, 4):
        return True
    if in_convex(x, y, [(50, 27), (62, 20), (62, 40), (50, 33)]):
        return True
    return any(draw(x, y, left) for draw, left in WORD)


def pixel(px, py):
    """RGBA of one pixel: coverage of the badge and of the white parts."""
    badge = white = 0
    n = SAMPLES * SAMPLES
    for sy in range(SAMPLES):
        for sx in range(SAMPLES):
            x = px + (sx + 0.5) / SAMPLES
            y = py + (sy + 0.5) / SAMPLES
            if in_round_rect(x, y, 0, 0, WIDTH, HEIGHT, 12):
                badge += 1
                if white_at(x, y):
                    white += 1
    if badge == 0:
        return (0, 0, 0, 0)
    f = white / float(badge)
    rgb = tuple(int(round(b + (w - b) * f)) for b, w in zip(BLUE, WHITE))
    return rgb + (int(round(255.0 * badge / n)),)


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png_bytes():
    rows = bytearray()
    for py in range(HEIGHT):
        rows.append(0)                 # filter type 0 (none) for each row
        for px in range(WIDTH):
            rows.extend(pixel(px, py))
    ihdr = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + chunk(b"IEND", b""))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "signatures/logo.png"
    data = png_bytes()
    with open(out, "wb") as f:
        f.write(data)
    print("%s: %dx%d, %d bytes" % (out, WIDTH, HEIGHT, len(data)))


if __name__ == "__main__":
    main()
