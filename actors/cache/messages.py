"""Messages of this actor package (placeholder until its issue lands)."""

MESSAGES: tuple[type, ...] = ()
