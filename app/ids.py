"""The one type of a database id as the API accepts it (paths, queries and bodies)."""

from typing import Annotated

from pydantic import Field

# Ids are `integer` columns: signed 32 bits on PostgreSQL, and the same bound keeps SQLite's
# 64-bit range from answering differently. A number outside it cannot name a row, so it is
# refused as input (422) rather than reaching the driver, which would fail with a 500.
MAX_ID = 2**31 - 1

DbId = Annotated[int, Field(ge=1, le=MAX_ID, description="A database id")]

# How many rows a page skips: past MAX_ID there is nothing left to skip to, and a larger number
# would overflow the database's integer (a 500) instead of answering an empty page.
Offset = Annotated[int, Field(ge=0, le=MAX_ID, description="Rows to skip")]
