"""Plain-text tables for the terminal: names down the left, figures side by side."""


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """The first column left-aligned, the others right-aligned. A row of just a name and a
    note (an estimator that could not be measured) runs its note across the figure columns."""
    name_width = max(len(row[0]) for row in [header, *rows])
    full_rows = [row for row in [header, *rows] if len(row) == len(header)]
    widths = [max(len(row[column]) for row in full_rows) for column in range(1, len(header))]
    lines = []
    for row in [header, *rows]:
        if len(row) == len(header):
            figures = [f"{cell:>{width}}" for cell, width in zip(row[1:], widths)]
        else:
            figures = row[1:]
        lines.append("  ".join([f"{row[0]:<{name_width}}", *figures]).rstrip())
    return "\n".join(lines)


def mebibytes(count: int) -> str:
    return f"{count / 2**20:.2f}"
