"""`appliance alerts ...`: filled in by issue 6."""


def register(commands) -> None:
    pass
