"""Weather for the dashboard."""

from net.client import connect


def current_temperature(city: str) -> float:
    session = connect("https://weather.example")
    data = session.
    return data["temperature"]
