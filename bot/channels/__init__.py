"""One adapter per messenger: each turns its events into `Incoming` and renders `Reply`."""


def split_text(text: str, limit: int) -> list[str]:
    """Cut a long text into pieces of at most `limit` characters, at line breaks if possible."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = text.rfind(" ", 0, limit)
        if cut < limit // 2:
            cut = limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip("\n ")
    pieces.append(text)
    return pieces
