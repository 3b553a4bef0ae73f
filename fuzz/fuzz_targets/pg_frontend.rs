//! Bytes a PostgreSQL client could send, from the first byte of a
//! connection on, through the server's decoding path.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    quipu_frontdoor::fuzzing::pg_frontend_raw(data);
});
