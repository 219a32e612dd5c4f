//! Parity tests: the PostgreSQL backend against the SQLite backend, the reference behaviour.
//! Each runs the same script against both stores and compares what they answer and hold.
//! They run only with `REFLECTOR_TEST_DATABASE_URL` (scripts/test.sh runs them on PostgreSQL
//! 15 and 16), and then fail, never skip, when the server cannot be reached.

mod edits;
mod tiers;
