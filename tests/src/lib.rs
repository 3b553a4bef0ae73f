//! Integration tests of Quipu live in `it/` (one test binary, many
//! modules); `src/bin/` holds helper programs the tests run as children.
