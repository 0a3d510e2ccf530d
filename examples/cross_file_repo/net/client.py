"""A small HTTP client with retries."""


class Session:
    """Keeps connections open between requests."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def fetch_json_with_retries(self, path: str, attempts: int = 3) -> dict:
        """GET ``path`` and decode the JSON body, retrying on connection errors."""
        raise NotImplementedError


def connect(base_url: str) -> Session:
    return Session(base_url)
