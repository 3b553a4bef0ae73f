//! SQL text as the front doors receive it: nesting check, parser and the
//! Flight placeholder rewrite.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    quipu_frontdoor::fuzzing::sql_text(data);
});
