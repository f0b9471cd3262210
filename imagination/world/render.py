"""Pixels for a Scene: a fast, anti-aliased, painterly 128 px landscape.

Why this design:
* Training renders scenes on the fly, so a scene must cost a few milliseconds on one core. Large
  smooth areas (sky, ground, water gradients, sun glow, stars) are numpy arrays built from one
  column and broadcast; everything else is PIL ImageDraw polygons, lines and ellipses, which are C
  loops. We draw at 2x and box-downsample (`Image.reduce`), which is the cheapest anti-aliasing.
* A multi-head judge must read every label from pixels at 128 px with >= 95% accuracy, so each
  label has a redundant, unmistakable signature: snow caps are white, forest is dense dark-green
  blobs on a green body, stones are grey boulders on an ochre body, a waterfall is a bright
  stripe in a dark cleft down the front peak, the sea reaches the horizon while a lake is ringed
  by land, boats carry a light sail or canopy, peach blossom is pink, willows hang in strands.
  Plain mountains are never green, ochre or white.
* Time of day tints every colour: dusk warms and darkens, night darkens to moonlight blue. Light
  things (snow, waterfall, sails) keep more of their brightness at night so they still read.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from .scene import Scene, river_center, sample_scene

Colour = tuple[int, int, int]

_SKY = {  # (top, middle, horizon) for two variants mixed by layout.sky_tone
    "day": (((38, 100, 190), (90, 150, 222), (186, 214, 240)),
            ((58, 128, 208), (122, 178, 232), (212, 230, 244))),
    "dusk": (((46, 40, 98), (172, 80, 112), (255, 158, 78)),
             ((72, 50, 112), (212, 100, 92), (255, 192, 110))),
    "night": (((3, 5, 18), (9, 15, 40), (26, 36, 76)),
              ((7, 9, 26), (15, 21, 54), (36, 42, 88))),
}
_GROUND = {  # (far, near) for two variants mixed by layout.ground_tone
    "grass": (((136, 176, 86), (70, 128, 50)), ((112, 162, 92), (50, 110, 56))),
    "desert": (((234, 206, 150), (212, 166, 104)), ((224, 192, 136), (198, 150, 94))),
    "snowfield": (((238, 242, 250), (220, 228, 242)), ((246, 246, 251), (228, 233, 244))),
}
_FLOWER_COLOURS = ((232, 52, 62), (252, 214, 50), (252, 252, 246), (172, 92, 204), (250, 140, 40))


def _mix(a: Sequence[float], b: Sequence[float], t: float) -> Colour:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


class _Tint:
    """Colour grading by time of day; `light=True` for bright surfaces that catch moonlight."""

    def __init__(self, time: str):
        self.time = time

    def __call__(self, c: Sequence[float], light: bool = False) -> Colour:
        r, g, b = c[0], c[1], c[2]
        if self.time == "dusk":
            k = 0.82 if light else 0.76
            r, g, b = r * k + 38, g * k + 14, b * k + 6
        elif self.time == "night":
            if light:
                r, g, b = r * 0.6 + 6, g * 0.62 + 10, b * 0.66 + 24
            else:
                r, g, b = r * 0.42 + 6, g * 0.45 + 10, b * 0.5 + 26
        return (min(255, int(r)), min(255, int(g)), min(255, int(b)))


def _scale(c: Sequence[float], k: float) -> Colour:
    return tuple(min(255, max(0, int(v * k))) for v in c)  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------
# Sky and ground backdrop (numpy)


def _backdrop(scene: Scene, S: int, rng: np.random.Generator, tint: _Tint) -> np.ndarray:
    lay = scene.layout
    hz = lay.horizon
    a, b = _SKY[scene.time]
    top, mid, hor = (np.asarray(_mix(p, q, lay.sky_tone), np.float32) for p, q in zip(a, b))
    ga, gb = _GROUND[scene.ground]
    far = np.asarray(tint(_mix(ga[0], gb[0], lay.ground_tone)), np.float32)
    near = np.asarray(tint(_mix(ga[1], gb[1], lay.ground_tone)), np.float32)
    ys = (np.arange(S, dtype=np.float32) + 0.5) / S
    t = np.clip(ys / hz, 0, 1)[:, None]
    sky = np.where(t < 0.55, top + (mid - top) * (t / 0.55),
                   mid + (hor - mid) * ((t - 0.55) / 0.45))
    tg = np.clip((ys - hz) / (1 - hz), 0, 1)[:, None]
    ground = far + (near - far) * tg
    col = np.where((ys < hz)[:, None], sky, ground)
    arr = np.repeat(np.clip(col, 0, 255).astype(np.uint8)[:, None, :], S, axis=1)

    h_px = int(hz * S)
    if scene.time == "night":  # stars: 2x2 blocks so they survive the 2x downsample
        n = int(rng.integers(70, 130))
        xs = rng.integers(0, S - 1, n)
        ys_ = rng.integers(0, max(2, h_px - 2), n)
        br = rng.integers(120, 256, n).astype(np.uint8)[:, None]
        for dy in (0, 1):
            for dx in (0, 1):
                arr[ys_ + dy, xs + dx] = np.maximum(arr[ys_ + dy, xs + dx], br)

    # glow around the sun or moon, only in the sky (float maths on a window only)
    bx, by, br_ = lay.body
    glow = {"day": ((255, 250, 230), 0.55, 2.6), "dusk": ((255, 205, 125), 0.75, 3.6),
            "night": ((170, 185, 220), 0.3, 2.2)}[scene.time]
    gc, strength, spread = glow
    sigma = br_ * spread * S
    cx, cy = bx * S, by * S
    x0, x1 = max(0, int(cx - 3 * sigma)), min(S, int(cx + 3 * sigma) + 1)
    y0, y1 = max(0, int(cy - 3 * sigma)), min(h_px, int(cy + 3 * sigma) + 1)
    if x1 > x0 and y1 > y0:
        k = -1.0 / (2 * sigma * sigma)  # a Gaussian is separable: two 1-D exps, one outer product
        gx = np.exp(k * (np.arange(x0, x1, dtype=np.float32) - cx) ** 2)
        gy = strength * np.exp(k * (np.arange(y0, y1, dtype=np.float32) - cy) ** 2)
        win = arr[y0:y1, x0:x1].astype(np.int16)
        win += ((gy[:, None] * gx[None, :])[..., None] * (np.asarray(gc, np.float32) - win)
                ).astype(np.int16)  # may be negative where the sky is brighter than the glow
        arr[y0:y1, x0:x1] = np.clip(win, 0, 255)
    return arr


def _sky_at(scene: Scene, y: float) -> Colour:
    a, b = _SKY[scene.time]
    top, mid, hor = (_mix(p, q, scene.layout.sky_tone) for p, q in zip(a, b))
    t = min(max(y / scene.layout.horizon, 0.0), 1.0)
    return _mix(top, mid, t / 0.55) if t < 0.55 else _mix(mid, hor, (t - 0.55) / 0.45)


# ----------------------------------------------------------------------------------------------
# Sky objects


def _draw_body(d: ImageDraw.ImageDraw, scene: Scene, S: int, rng: np.random.Generator,
               backdrop: np.ndarray) -> None:
    x, y, r = (v * S for v in scene.layout.body)
    if scene.time == "day":
        d.ellipse([x - r, y - r, x + r, y + r], fill=(255, 252, 236))
    elif scene.time == "dusk":
        d.ellipse([x - r, y - r, x + r, y + r], fill=(255, 112, 52))
        d.ellipse([x - 0.8 * r, y - 0.85 * r, x + 0.8 * r, y + 0.75 * r], fill=(255, 146, 66))
    else:
        d.ellipse([x - r, y - r, x + r, y + r], fill=(246, 242, 214))
        if scene.layout.crescent:  # cover with the (glowing) sky just beside the moon
            o = 0.45 * r
            sx, sy = min(S - 1, int(x + o + 1.05 * r)), int(y)
            sky = tuple(int(v) for v in np.clip(backdrop[sy, sx], 0, 255))
            d.ellipse([x - r + o, y - r - 0.2 * o, x + r + o, y + r - 0.2 * o], fill=sky)
        else:
            for _ in range(3):
                cx, cy = x + rng.uniform(-0.5, 0.3) * r, y + rng.uniform(-0.4, 0.4) * r
                cr = rng.uniform(0.12, 0.22) * r
                d.ellipse([cx - cr, cy - cr, cx + cr, cy + cr], fill=(226, 222, 196))


def _draw_clouds(d, scene: Scene, S: int, rng) -> None:
    light, shade = {"day": ((252, 252, 253), (206, 214, 228)),
                    "dusk": ((255, 202, 170), (186, 118, 132)),
                    "night": ((112, 120, 150), (72, 78, 108))}[scene.time]
    for cx, cy, w in scene.layout.clouds:
        cx, cy, w = cx * S, cy * S, w * S
        n = int(rng.integers(4, 7))
        puffs = []
        for i in range(n):
            px = cx - 0.36 * w + 0.72 * w * (i + rng.uniform(0.2, 0.8)) / n
            r = w * rng.uniform(0.11, 0.2) * (1.25 - abs(px - cx) / w)
            puffs.append((px, cy - r * rng.uniform(0.1, 0.5), r))
        d.rounded_rectangle([cx - 0.46 * w, cy - 0.02 * w, cx + 0.46 * w, cy + 0.1 * w],
                            radius=0.05 * w, fill=shade)
        for px, py, r in puffs:
            d.ellipse([px - r, py - r + 0.22 * r, px + r, py + r + 0.22 * r], fill=shade)
        for px, py, r in puffs:
            d.ellipse([px - 0.9 * r, py - 0.92 * r, px + 0.9 * r, py + 0.86 * r], fill=light)
        d.rounded_rectangle([cx - 0.43 * w, cy - 0.04 * w, cx + 0.43 * w, cy + 0.055 * w],
                            radius=0.04 * w, fill=light)


def _draw_birds(d, scene: Scene, S: int, rng) -> None:
    colour = (34, 30, 40) if scene.time == "day" else (40, 22, 34)
    width = max(2, int(round(S * 0.0095)))
    for x, y, s in scene.layout.birds:
        x, y, s = x * S, y * S, s * S
        flap = rng.uniform(-0.15, 0.2) * s
        pts = [(x - 0.5 * s, y - 0.12 * s + flap), (x - 0.22 * s, y - 0.2 * s), (x, y + 0.06 * s),
               (x + 0.22 * s, y - 0.2 * s), (x + 0.5 * s, y - 0.12 * s + flap)]
        d.line(pts, fill=colour, width=width, joint="curve")


# ----------------------------------------------------------------------------------------------
# Mountains


class _Peak:
    """A jagged but monotone outline: each side only rises towards the summit, so a horizontal
    line crosses it exactly twice (which makes snow caps and slope spans trivial)."""

    def __init__(self, px, h, wl, wr, hz, rng):
        self.px, self.h, self.wl, self.wr, self.hz = px, h, wl, wr, hz
        n = 9
        p = rng.uniform(0.85, 1.3)

        def side(width):
            f = np.sort(rng.uniform(0.04, 0.97, n))
            hh = np.maximum.accumulate(np.clip(f ** p + rng.normal(0, 0.03, n), 0.0, 0.985))
            return f, hh

        fl, hl = side(wl)
        fr, hr = side(wr)
        # left side from base to summit; right side stored base to summit too (for interp)
        self.lx = np.concatenate([[px - wl], px - wl * (1 - fl), [px]])
        self.lh = np.concatenate([[0.0], hl * h, [h]])
        self.rx = np.concatenate([[px + wr], px + wr * (1 - fr), [px]])
        self.rh = np.concatenate([[0.0], hr * h, [h]])

    def outline(self) -> list[tuple[float, float]]:
        hz = self.hz
        left = list(zip(self.lx, hz - self.lh))
        right = list(zip(self.rx[::-1], hz - self.rh[::-1]))[1:]
        return [(self.px - self.wl, hz + 0.01)] + left + right + [(self.px + self.wr, hz + 0.01)]

    def span(self, height: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x extent of the mountain at each height above the horizon."""
        return np.interp(height, self.lh, self.lx), np.interp(height, self.rh, self.rx)

    def cap(self, frac: float, rng) -> tuple[list, list]:
        """Polygon above height frac*h with a dripping lower edge, and its shadowed right half."""
        hc = frac * self.h
        xl, xr = self.span(np.asarray([hc]))
        xl, xr = float(xl[0]), float(xr[0])
        yc = self.hz - hc
        left = [(x, self.hz - hh) for x, hh in zip(self.lx, self.lh) if hh > hc]
        right = [(x, self.hz - hh) for x, hh in zip(self.rx[::-1], self.rh[::-1]) if hh > hc]
        k = 7
        drips = []
        for i in range(k, 0, -1):
            x = xl + (xr - xl) * i / (k + 1)
            depth = rng.uniform(0.04, 0.16) if i % 2 else rng.uniform(-0.01, 0.04)
            drips.append((x, yc + depth * self.h))
        poly = [(xl, yc)] + left + right + [(xr, yc)] + drips
        top = (self.px, self.hz - self.h)
        shadow = [top] + [p for p in right if p[0] > self.px] + [(xr, yc)] + \
            [p for p in drips if p[0] > self.px + 0.25 * (xr - self.px)] + \
            [(self.px + 0.2 * (xr - self.px), yc + 0.05 * self.h)]
        return poly, shadow

    def shadow(self, rng) -> list:
        hz, px = self.hz, self.px
        right = list(zip(self.rx[::-1], hz - self.rh[::-1]))
        ridge = [(px + self.wr * (0.05 + 0.1 * s + rng.uniform(-0.03, 0.03)), hz - self.h * (1 - s))
                 for s in (0.25, 0.5, 0.75)]
        return right + [(px + self.wr, hz + 0.01), (px + 0.18 * self.wr, hz + 0.01)] + ridge[::-1]


def _poly(d, pts, S, fill):
    d.polygon([(x * S, y * S) for x, y in pts], fill=fill)


def _draw_mountains(d, scene: Scene, S: int, rng, tint: _Tint) -> None:
    lay = scene.layout
    if not lay.peaks:
        return
    hz = lay.horizon
    kind = scene.mountain
    body = lay.mountain_colour
    hor = _sky_at(scene, hz * 0.98)
    snow, snow_shade = (248, 250, 253), (194, 207, 228)

    for px, h, wl, wr in lay.far_peaks:  # hazy distant range
        pk = _Peak(px, h, wl, wr, hz, rng)
        base = _mix(tint(body), hor, 0.5)
        _poly(d, pk.outline(), S, base)
        _poly(d, pk.shadow(rng), S, _scale(base, 0.9))
        if kind == "snow":
            cap, cap_shadow = pk.cap(1 - lay.snowline, rng)
            _poly(d, cap, S, _mix(tint(snow, True), hor, 0.25))
            _poly(d, cap_shadow, S, _mix(tint(snow_shade, True), hor, 0.25))

    peaks = list(lay.peaks[1:]) + [lay.peaks[0]]  # feature peak last, in front
    for i, (px, h, wl, wr) in enumerate(peaks):
        pk = _Peak(px, h, wl, wr, hz, rng)
        shade = 0.97 - 0.05 * ((len(peaks) - 1 - i) % 2)  # alternate so overlaps stay visible
        _poly(d, pk.outline(), S, tint(_scale(body, shade)))
        _poly(d, pk.shadow(rng), S, tint(_scale(body, 0.76 * shade)))
        if kind == "snow":
            cap, cap_shadow = pk.cap(1 - lay.snowline, rng)
            _poly(d, cap, S, tint(snow, True))
            _poly(d, cap_shadow, S, tint(snow_shade, True))
        elif kind == "forest":
            _forest(d, pk, S, rng, tint)
        elif kind == "stones":
            _stones(d, pk, S, rng, tint)
        elif kind == "waterfall" and i == len(peaks) - 1:
            _waterfall(d, pk, lay.waterfall_x, S, rng, tint)


def _inside(pk: _Peak, n: int, lo: float, hi: float, rng, margin: float = 0.0):
    """n random points on the mountain face between heights lo*h and hi*h."""
    height = rng.uniform(lo, hi, n) * pk.h
    xl, xr = pk.span(height)
    xl, xr = xl + margin, xr - margin
    ok = xr > xl
    x = xl + (xr - xl) * rng.uniform(0, 1, n)
    return x[ok], (pk.hz - height)[ok]


def _forest(d, pk: _Peak, S, rng, tint):
    area = pk.h * (pk.wl + pk.wr) / 2
    n = int(np.clip(area * 900, 25, 140))
    xs, ys = _inside(pk, n, 0.0, 0.72, rng, margin=0.012)
    order = np.argsort(ys)
    darks = [tint(c) for c in ((30, 76, 40), (24, 64, 34), (40, 90, 46), (34, 84, 52))]
    hi = tint((78, 132, 66))
    for j in order:
        x, y = xs[j] * S, ys[j] * S
        r = S * rng.uniform(0.011, 0.018)
        d.ellipse([x - r, y - 1.1 * r, x + r, y + 0.9 * r], fill=darks[int(rng.integers(4))])
        d.ellipse([x - 0.55 * r, y - 0.95 * r, x + 0.1 * r, y - 0.35 * r], fill=hi)


def _stones(d, pk: _Peak, S, rng, tint):
    area = pk.h * (pk.wl + pk.wr) / 2
    n = int(np.clip(area * 150, 6, 26))
    xs, ys = _inside(pk, n, 0.05, 0.75, rng, margin=0.03)
    # a row of big boulders at the foot of the mountain
    fx = pk.px + rng.uniform(-0.7, 0.7, 3) * np.where(rng.uniform(size=3) < 0.5, pk.wl, pk.wr)
    xs, ys = np.concatenate([xs, fx]), np.concatenate([ys, np.full(3, pk.hz - 0.012)])
    crack = tint((70, 58, 50))
    for _ in range(4):
        cx, cy = _inside(pk, 1, 0.2, 0.8, rng, margin=0.02)
        if len(cx):
            x, y = cx[0] * S, cy[0] * S
            L = S * rng.uniform(0.03, 0.06)
            d.line([(x, y), (x + 0.3 * L, y + 0.5 * L), (x + 0.1 * L, y + L)], fill=crack,
                   width=max(1, S // 128))
    for j in np.argsort(ys):
        r = rng.uniform(0.016, 0.032) * S * (1.3 if ys[j] > pk.hz - 0.02 else 1.0)
        x, y = xs[j] * S, ys[j] * S
        ang = np.sort(rng.uniform(0, 2 * np.pi, 7))
        rad = r * rng.uniform(0.8, 1.1, 7)
        pts = [(x + rr * math.cos(a), y + 0.72 * rr * math.sin(a)) for a, rr in zip(ang, rad)]
        g = rng.uniform(160, 192)
        d.polygon([(px + 0.22 * r, py + 0.2 * r) for px, py in pts], fill=tint((86, 84, 90)))
        d.polygon(pts, fill=tint((g, g - 2, g - 7)))
        d.ellipse([x - 0.6 * r, y - 0.55 * r, x + 0.05 * r, y - 0.1 * r],
                  fill=tint((g + 30, g + 28, g + 22)))


def _waterfall(d, pk: _Peak, x_wf: float, S, rng, tint):
    hz, h = pk.hz, pk.h
    height = float(np.interp(x_wf, pk.lx, pk.lh) if x_wf <= pk.px else
                   np.interp(x_wf, pk.rx[::-1], pk.rh[::-1]))
    y_top = hz - height + 0.12 * h
    w = rng.uniform(0.026, 0.036)
    ys = np.linspace(y_top, hz + 0.01, 7)
    jit = rng.uniform(-0.12, 0.12, (2, 7)) * w

    def band(half, j):
        left = [(x_wf - half + jit[0, i] * j, y) for i, y in enumerate(ys)]
        right = [(x_wf + half + jit[1, i] * j, y) for i, y in enumerate(ys)][::-1]
        return left + right

    _poly(d, [(x_wf, y_top - 0.04 * h)] + band(1.0 * w, 2)[1:-1] + [(x_wf, y_top - 0.04 * h)], S,
          tint((42, 46, 52)))
    _poly(d, band(0.5 * w, 1), S, tint((236, 246, 255), True))
    streak = tint((160, 200, 236), True)
    for k in (-0.25, 0.2):
        d.line([((x_wf + k * w) * S, (y_top + 0.02) * S), ((x_wf + k * w) * S, hz * S)],
               fill=streak, width=max(1, S // 128))
    d.ellipse([(x_wf - 0.7 * w) * S, (y_top - 0.01) * S, (x_wf + 0.7 * w) * S, (y_top + 0.015) * S],
              fill=tint((250, 252, 255), True))


# ----------------------------------------------------------------------------------------------
# Ground, water


def _bands(d, scene: Scene, S, rng, tint, ground_far, ground_near):
    lay = scene.layout
    hz = lay.horizon
    xs = np.linspace(0, 1, 25)
    kind = scene.ground
    for i in range(3):
        t = 0.1 + 0.27 * i + rng.uniform(0, 0.1)
        y0 = hz + (1 - hz) * t
        amp, f, ph = rng.uniform(0.008, 0.022), rng.uniform(0.6, 1.8), rng.uniform(0, 6.3)
        top = y0 + amp * np.sin(2 * np.pi * f * xs + ph)
        c = _mix(ground_far, ground_near, min(1.0, t + 0.1))
        if kind == "desert":
            c = _scale(c, 1.05 if i % 2 == 0 else 0.93)
        elif kind == "snowfield":
            c = c if i % 2 == 0 else _mix(c, tint((200, 212, 236)), 0.6)
        else:
            c = _scale(c, 1.04 if i % 2 == 0 else 0.94)
        pts = [(x * S, y * S) for x, y in zip(xs, top)] + [(S, S), (0, S)]
        d.polygon(pts, fill=c)
        if kind == "desert":
            d.line([(x * S, y * S) for x, y in zip(xs, top)], fill=_scale(c, 1.08),
                   width=max(1, S // 100))


def _water_mask(scene: Scene, S, rng) -> Image.Image:
    lay = scene.layout
    mask = Image.new("L", (S, S), 0)
    md = ImageDraw.Draw(mask)
    w = scene.water
    hz = lay.horizon
    if w in ("sea", "river_to_sea"):
        xs = np.linspace(0, 1, 21)
        shore = lay.shore + 0.006 * np.sin(xs * rng.uniform(6, 14) + rng.uniform(0, 6)) \
            + rng.uniform(-0.003, 0.003, 21)
        pts = [(0, hz * S), (S, hz * S)] + [(x * S, y * S) for x, y in zip(xs[::-1], shore[::-1])]
        md.polygon(pts, fill=255)
    if w in ("river", "river_to_sea"):
        md.polygon(_river_polygon(lay.river, S), fill=255)
    if w == "lake":
        md.polygon(_lake_polygon(lay.lake, S, rng), fill=255)
    return mask


def _river_polygon(river, S):
    left, right = [], []
    for t in np.linspace(0, 1, 26):
        x, y, hw = river_center(river, float(t))
        left.append(((x - hw) * S, y * S))
        right.append(((x + hw) * S, y * S))
    return left + right[::-1]


def _lake_polygon(lake, S, rng):
    cx, cy, rx, ry = lake
    a = np.linspace(0, 2 * np.pi, 28, endpoint=False)
    wob = 1 + 0.05 * np.sin(3 * a + rng.uniform(0, 6)) + rng.uniform(-0.03, 0.03, 28)
    return [((cx + rx * wb * math.cos(t)) * S, (cy + ry * wb * math.sin(t)) * S)
            for t, wb in zip(a, wob)]


def _draw_water(img: Image.Image, scene: Scene, S, rng, tint, ground_near) -> Image.Image:
    lay = scene.layout
    hz = lay.horizon
    mask = _water_mask(scene, S, rng)
    hor = _sky_at(scene, hz)
    far, near = {"day": (_mix(hor, (70, 132, 192), 0.45), (34, 86, 152)),
                 "dusk": (_mix(hor, (214, 120, 110), 0.4), (58, 60, 112)),
                 "night": (_mix(hor, (30, 40, 80), 0.3), (8, 12, 34))}[scene.time]
    # The water picture (gradient, ripples, glint) is painted on its own strip below the horizon
    # and pasted through the water mask once: clipping for free, one paste.
    y0 = int(hz * S)
    ys = (np.arange(y0, S, dtype=np.float32) + 0.5) / S
    t = np.clip((ys - hz) / (1 - hz), 0, 1)[:, None] ** 0.7
    far_, near_ = np.asarray(far, np.float32), np.asarray(near, np.float32)
    col = (far_ + (near_ - far_) * t).astype(np.uint8)
    water = Image.fromarray(col[:, None, :]).resize((S, S - y0), Image.NEAREST)
    wd = ImageDraw.Draw(water)
    lw = max(1, S // 128)
    ripple_col = _mix(near, hor, 0.45)
    for _ in range(70):
        depth = rng.uniform(0, 1) ** 1.5
        y = (hz + (1 - hz) * depth) * S - y0
        x = rng.uniform(0, 1) * S
        L = S * (0.012 + 0.05 * depth)
        wd.line([(x - L, y), (x + L, y)], fill=ripple_col, width=lw)
    bx, _, br = lay.body
    glint_col = {"day": (236, 246, 255), "dusk": (255, 190, 112),
                 "night": (214, 210, 176)}[scene.time]
    y = hz * S + 1
    while y < S:
        depth = (y / S - hz) / (1 - hz)
        half = br * S * rng.uniform(0.15, 0.9) * (0.5 + 1.4 * depth)
        off = rng.uniform(-0.4, 0.4) * br * S
        row = min(len(col) - 1, max(0, int(y) - y0))
        c = _mix(col[row], glint_col, rng.uniform(0.47, 0.9))
        wd.line([(bx * S - half + off, y - y0), (bx * S + half + off, y - y0)], fill=c, width=lw)
        y += S * rng.uniform(0.012, 0.03) * (1 + depth)
    img.paste(water, (0, y0), mask.crop((0, y0, S, S)))
    d = ImageDraw.Draw(img)

    # shore lines: foam on the sea, darker banks along rivers and lakes
    foam = tint((240, 246, 252), True)
    bank = _scale(ground_near, 0.72)
    w = max(2, S // 90)
    if scene.water in ("sea", "river_to_sea"):
        mouth = river_center(lay.river, 0.0) if scene.water == "river_to_sea" else (-9, 0, 0)
        xs = np.linspace(0, 1, 41)
        seg = []
        for x in xs:
            if abs(x - mouth[0]) < mouth[2] + 0.03:
                if len(seg) > 1:
                    d.line(seg, fill=foam, width=w)
                seg = []
                continue
            seg.append((x * S, (lay.shore + 0.004) * S))
        if len(seg) > 1:
            d.line(seg, fill=foam, width=w)
    if scene.water in ("river", "river_to_sea"):
        poly = _river_polygon(lay.river, S)
        n = len(poly) // 2
        start = 1 if scene.water == "river_to_sea" else 0
        d.line(poly[start:n], fill=bank, width=w)
        d.line(poly[n:len(poly) - start], fill=bank, width=w)
    if scene.water == "lake":
        poly = _lake_polygon(lay.lake, S, np.random.default_rng(scene.detail_seed + 1))
        d.line(poly + poly[:1], fill=bank, width=w)
    return mask


def _draw_boats(d, scene: Scene, S, rng, tint):
    hull = tint((92, 56, 32))
    sail = tint((246, 238, 214), True)
    canopy = tint((196, 150, 92), True)
    for x, y, L, has_sail in scene.layout.boats:
        x, y, L = x * S, y * S, L * S
        hh = 0.2 * L
        d.line([(x - 0.45 * L, y + 0.06 * L), (x + 0.45 * L, y + 0.06 * L)], fill=_scale(hull, 0.6),
               width=max(1, int(0.05 * L)))
        d.polygon([(x - 0.5 * L, y - hh), (x + 0.5 * L, y - hh), (x + 0.34 * L, y),
                   (x - 0.36 * L, y)], fill=hull)
        if has_sail:
            d.line([(x, y - hh), (x, y - 1.15 * L)], fill=_scale(hull, 0.8),
                   width=max(1, int(0.04 * L)))
            d.polygon([(x + 0.03 * L, y - 1.1 * L), (x + 0.03 * L, y - 0.3 * L),
                       (x + 0.48 * L, y - 0.3 * L)], fill=sail)
            d.polygon([(x - 0.03 * L, y - 0.95 * L), (x - 0.03 * L, y - 0.32 * L),
                       (x - 0.3 * L, y - 0.32 * L)], fill=_scale(sail, 0.9))
        else:
            d.chord([x - 0.3 * L, y - hh - 0.3 * L, x + 0.3 * L, y - hh + 0.3 * L], 180, 360,
                    fill=canopy)


# ----------------------------------------------------------------------------------------------
# Trees, flowers, smoke


def _draw_pine(d, x, base, h, rng, tint):
    d.rectangle([x - 0.03 * h, base - 0.38 * h, x + 0.03 * h, base], fill=tint((92, 62, 40)))
    n = int(rng.integers(4, 6))
    dark, shade = tint((30, 82, 50)), tint((20, 60, 40))
    for i in range(n):
        yb = base - 0.2 * h - i * 0.74 * h / n
        hw = 0.24 * h * (1 - i / (n + 0.6)) * rng.uniform(0.9, 1.1)
        yt = yb - 0.34 * h
        d.polygon([(x - hw, yb), (x + hw, yb), (x, yt)], fill=dark)
        d.polygon([(x, yb), (x + hw, yb), (x, yt)], fill=shade)


def _draw_bamboo(d, x, base, h, S, rng, tint):
    stalks = [tint(c, True) for c in ((112, 168, 72), (92, 150, 60), (128, 178, 80))]
    node = tint((62, 108, 44), True)
    leaves = [tint(c, True) for c in ((66, 142, 58), (96, 166, 70), (48, 118, 48))]
    w = max(3, int(S * 0.015))
    for _ in range(int(rng.integers(6, 10))):
        sx = x + rng.uniform(-0.1, 0.1) * h
        hs = h * rng.uniform(0.7, 1.05)
        lean = rng.uniform(-0.08, 0.08) * h
        d.line([(sx, base), (sx + lean, base - hs)], fill=stalks[int(rng.integers(3))], width=w)
        for k in np.arange(0.12, 0.95, 0.13):
            nx, ny = sx + lean * k, base - hs * k
            d.line([(nx - w, ny), (nx + w, ny)], fill=node, width=max(1, w // 2))
        for _ in range(int(rng.integers(8, 13))):
            k = rng.uniform(0.4, 1.0)
            px, py = sx + lean * k, base - hs * k
            ang = rng.uniform(-0.5, 0.6) + (0 if rng.random() < 0.5 else math.pi)
            L, lw = h * rng.uniform(0.1, 0.15), h * 0.022
            dx, dy = math.cos(ang), math.sin(ang) * 0.6 + 0.35
            mx, my = px + dx * L * 0.5, py + dy * L * 0.5
            d.polygon([(px, py), (mx - dy * lw, my + dx * lw), (px + dx * L, py + dy * L),
                       (mx + dy * lw, my - dx * lw)], fill=leaves[int(rng.integers(3))])


def _draw_peach(d, x, base, h, S, rng, tint):
    bark = tint((88, 54, 44))
    w = max(2, int(S * 0.014))
    top = (x + rng.uniform(-0.04, 0.04) * h, base - 0.45 * h)
    d.line([(x, base), top], fill=bark, width=int(w * 1.6))
    tips = []
    for _ in range(int(rng.integers(3, 5))):
        ang = rng.uniform(-2.6, -0.5)
        L = h * rng.uniform(0.25, 0.4)
        tip = (top[0] + math.cos(ang) * L, top[1] + math.sin(ang) * L)
        d.line([top, tip], fill=bark, width=w)
        tips.append(tip)
    pinks = [tint(c, True)
             for c in ((255, 176, 206), (248, 140, 182), (255, 206, 226), (236, 112, 160))]
    cx, cy = top[0], top[1] - 0.22 * h
    for _ in range(int(rng.integers(40, 60))):
        if rng.random() < 0.5 and tips:
            tx, ty = tips[int(rng.integers(len(tips)))]
            bx, by = tx + rng.normal(0, 0.07) * h, ty + rng.normal(0, 0.05) * h
        else:
            bx, by = cx + rng.normal(0, 0.16) * h, cy + rng.normal(0, 0.1) * h
        r = h * rng.uniform(0.025, 0.045)
        d.ellipse([bx - r, by - r, bx + r, by + r], fill=pinks[int(rng.integers(4))])


def _draw_willow(d, x, base, h, S, rng, tint):
    bark = tint((84, 64, 46))
    w = max(2, int(S * 0.014))
    top = (x + rng.uniform(-0.05, 0.05) * h, base - 0.62 * h)
    d.line([(x, base), top], fill=bark, width=int(w * 1.7))
    cx, cy, rx, ry = top[0], top[1] - 0.12 * h, 0.3 * h, 0.16 * h
    d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=tint((104, 150, 62), True))
    strands = [tint(c, True)
               for c in ((152, 192, 82), (118, 170, 62), (172, 204, 96), (96, 146, 52))]
    sw = max(1, int(S * 0.007))
    for _ in range(int(rng.integers(26, 38))):
        a = rng.uniform(math.pi * 1.05, math.pi * 1.95)
        sx = cx + rx * math.cos(a) * rng.uniform(0.6, 1.0)
        sy = cy + ry * math.sin(a) * rng.uniform(0.3, 1.0)
        L = h * rng.uniform(0.3, 0.58)
        out = (sx - cx) / rx * 0.08 * h
        pts = [(sx, sy), (sx + out * 0.8, sy + 0.35 * L), (sx + out, sy + 0.7 * L),
               (sx + out * 0.9, sy + L)]
        d.line(pts, fill=strands[int(rng.integers(4))], width=sw)


def _draw_trees(d, scene: Scene, S, rng, tint):
    for kind, x, base, h in scene.layout.trees:
        x, base, h = x * S, base * S, h * S
        if kind == "pine":
            _draw_pine(d, x, base, h, rng, tint)
        elif kind == "bamboo":
            _draw_bamboo(d, x, base, h, S, rng, tint)
        elif kind == "peach":
            _draw_peach(d, x, base, h, S, rng, tint)
        elif kind == "willow":
            _draw_willow(d, x, base, h, S, rng, tint)


def _draw_flowers(d, scene: Scene, S, rng, tint, mask: Image.Image | None):
    lay = scene.layout
    n = lay.flowers
    if not n:
        return
    hz = lay.horizon
    y_lo = max(hz + 0.3 * (1 - hz), lay.shore + 0.025 if scene.water == "sea" else 0.0)
    water = np.asarray(mask) if mask is not None else None
    centres = [(rng.uniform(0.1, 0.9), rng.uniform(y_lo, 1.0)) for _ in range(4)]
    colours = [tint(_FLOWER_COLOURS[i], True) for i in lay.flower_colours]
    placed = 0
    for _ in range(n * 4):
        if placed >= n:
            break
        if rng.random() < 0.7:
            cx, cy = centres[int(rng.integers(len(centres)))]
            x, y = cx + rng.normal(0, 0.09), cy + rng.normal(0, 0.035)
        else:
            x, y = rng.uniform(0, 1), rng.uniform(y_lo, 1)
        if not (0 <= x < 1 and y_lo <= y < 1):
            continue
        if water is not None and water[int(y * S), int(x * S)]:
            continue
        r = S * rng.uniform(0.008, 0.013) * (0.7 + 0.6 * (y - hz) / (1 - hz))
        d.ellipse([x * S - r, y * S - r, x * S + r, y * S + r], fill=colours[placed % len(colours)])
        placed += 1


def _draw_smoke(d, scene: Scene, S, rng, tint):
    x, y = scene.layout.smoke
    if x < 0:
        return
    c = tint((150, 140, 132))
    pts = [(x * S, y * S)]
    for k in range(1, 7):
        pts.append(((x + rng.uniform(-0.004, 0.004)) * S, (y - 0.045 * k) * S))
    for k in range(6):
        d.line(pts[k:k + 2], fill=c, width=max(1, int(S * (0.012 - 0.0012 * k))))


# ----------------------------------------------------------------------------------------------
# Public API


def render(scene: Scene, size: int = 128) -> np.ndarray:
    """The scene as a (size, size, 3) uint8 RGB array; identical scenes give identical bytes."""
    S = 2 * size
    rng = np.random.default_rng(scene.detail_seed)
    tint = _Tint(scene.time)
    lay = scene.layout
    arr = _backdrop(scene, S, rng, tint)
    img = Image.fromarray(arr)
    d = ImageDraw.Draw(img)
    _draw_body(d, scene, S, rng, arr)
    _draw_clouds(d, scene, S, rng)
    _draw_mountains(d, scene, S, rng, tint)
    ga, gb = _GROUND[scene.ground]
    g_far = tint(_mix(ga[0], gb[0], lay.ground_tone))
    g_near = tint(_mix(ga[1], gb[1], lay.ground_tone))
    _bands(d, scene, S, rng, tint, g_far, g_near)
    mask = _draw_water(img, scene, S, rng, tint, g_near) if scene.water != "none" else None
    if lay.waterfall_x > 0:  # mist where the waterfall lands
        x, hz = lay.waterfall_x * S, lay.horizon * S
        r = S * 0.045
        d.ellipse([x - r, hz - 0.35 * r, x + r, hz + 0.4 * r], fill=tint((236, 242, 248), True))
    _draw_smoke(d, scene, S, rng, tint)
    _draw_boats(d, scene, S, rng, tint)
    _draw_flowers(d, scene, S, rng, tint, mask)
    _draw_trees(d, scene, S, rng, tint)
    _draw_birds(d, scene, S, rng)
    return np.asarray(img.reduce(2))


def render_batch(seeds: Iterable[int], size: int = 128) -> np.ndarray:
    """Render `sample_scene(seed)` for each seed: an (N, size, size, 3) uint8 array."""
    images = [render(sample_scene(int(s)), size) for s in seeds]
    if not images:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack(images)


def contact_sheet(images: np.ndarray, columns: int = 6, pad: int = 2) -> np.ndarray:
    """Tile (N, H, W, 3) images into one picture, for eyeballing the world."""
    n, h, w, _ = images.shape
    rows = -(-n // columns)
    sheet = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        y0, x0 = pad + r * (h + pad), pad + c * (w + pad)
        sheet[y0:y0 + h, x0:x0 + w] = im
    return sheet
