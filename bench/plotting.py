"""Line charts drawn with PIL (no plotting library in the lock): panels stacked vertically,
each with one or more labelled lines."""

from __future__ import annotations

from PIL import Image, ImageDraw

COLORS = ("navy", "darkorange", "forestgreen", "crimson", "purple", "saddlebrown")
Points = dict[float, float]


def plot_panels(panels: dict[str, dict[str, Points]], path: str, size=(900, 500)) -> None:
    """panel title -> line label -> {x: y}; one panel per title, a shared y range per panel."""
    image = Image.new("RGB", (size[0], size[1] * len(panels)), "white")
    draw = ImageDraw.Draw(image)
    margin = 50
    for row, (title, lines) in enumerate(panels.items()):
        top = row * size[1]
        points = [point for line in lines.values() for point in line.items()]
        x0, x1 = min(x for x, _ in points), max(x for x, _ in points)
        y0, y1 = min(y for _, y in points), max(y for _, y in points)
        x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

        def at(x, y):
            return (margin + (x - x0) / (x1 - x0) * (size[0] - 2 * margin),
                    top + size[1] - margin - (y - y0) / (y1 - y0) * (size[1] - 2 * margin))

        draw.rectangle([margin, top + margin, size[0] - margin, top + size[1] - margin],
                       outline="gray")
        draw.text((margin, top + 10), f"{title}: y {y0:.3g} .. {y1:.3g}, x {x0:.3g} .. {x1:.3g}",
                  fill="black")
        for index, (label, line) in enumerate(lines.items()):
            color = COLORS[index % len(COLORS)]
            xy = [at(x, y) for x, y in sorted(line.items())]
            if len(xy) > 1:
                draw.line(xy, fill=color, width=2)
            for x, y in xy:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
            draw.text((size[0] - margin - 260, top + margin + 8 + 14 * index), label, fill=color)
    image.save(path)


def plot_mode_histogram(counts: list[int], path: str, size=(1100, 450)) -> None:
    """Samples per mode, sorted from the most to the least drawn: one bar per mode, and the
    uniform level (samples / modes) as a red line."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    margin, ordered = 50, sorted(counts, reverse=True)
    uniform = sum(counts) / len(counts)
    top = max(ordered[0], uniform) * 1.05 or 1
    width = (size[0] - 2 * margin) / len(ordered)

    def y(value: float) -> float:
        return size[1] - margin - value / top * (size[1] - 2 * margin)

    for index, count in enumerate(ordered):
        x = margin + index * width
        draw.rectangle([x, y(count), x + max(width - 0.2, 0.5), size[1] - margin], fill="navy")
    draw.line([margin, y(uniform), size[0] - margin, y(uniform)], fill="crimson", width=2)
    covered = sum(1 for count in counts if count)
    draw.text((margin, 10), f"samples per mode, sorted: {covered} of {len(counts)} modes drawn; "
              f"max {ordered[0]}, uniform {uniform:.1f} (red)", fill="black")
    image.save(path)
