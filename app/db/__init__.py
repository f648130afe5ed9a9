from app.db.engine import read_session, unit_of_work

__all__ = ["read_session", "unit_of_work"]
