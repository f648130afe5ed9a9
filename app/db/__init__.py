from app.db.engine import Connection, read_connection, unit_of_work

__all__ = ["Connection", "read_connection", "unit_of_work"]
