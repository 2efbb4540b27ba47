"""The connector's database: tables, engine and sessions, group commit, migrations."""
