//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz) and for the
//! regression inputs in `fuzz/regressions/`, which the test suite replays
//! (`cargo test -p quipu-frontdoor`). Each takes arbitrary bytes and must
//! return without panicking, whatever they hold.

use bytes::BytesMut;
use pgwire::messages::{DecodeContext, PgWireFrontendMessage, SslNegotiationMetaMessage};

/// The PostgreSQL wire decoding path of a connection: bytes as a client
/// sends them from the first one, through SSL negotiation and startup to
/// the messages of a running session, decoded the way the server's codec
/// does, the state advancing as it would. A panic in pgwire's decoder
/// counts as a closed connection, as in the server (see [`decode`]).
pub fn pg_frontend(data: &[u8]) {
    pg_frontend_with(data, true)
}

/// [`pg_frontend`] letting pgwire's panics through: what the fuzz target
/// runs, so that new ones are found.
pub fn pg_frontend_raw(data: &[u8]) {
    pg_frontend_with(data, false)
}

fn pg_frontend_with(data: &[u8], contain_panics: bool) {
    let mut buf = BytesMut::from(data);
    let mut ctx = DecodeContext::default();
    // Bounded: each message consumes bytes or ends the loop.
    for _ in 0..data.len() + 2 {
        match decode(&mut buf, &ctx, contain_panics) {
            Ok(Some(PgWireFrontendMessage::SslNegotiation(m))) => {
                ctx.awaiting_frontend_ssl = false;
                if !matches!(m, SslNegotiationMetaMessage::None) {
                    continue;
                }
            }
            Ok(Some(PgWireFrontendMessage::Startup(_))) => ctx.awaiting_frontend_startup = false,
            Ok(Some(PgWireFrontendMessage::CancelRequest(_))) => return,
            Ok(Some(PgWireFrontendMessage::Query(q))) => sql_text(q.query.as_bytes()),
            Ok(Some(PgWireFrontendMessage::Parse(p))) => sql_text(p.query.as_bytes()),
            Ok(Some(_)) => {}
            // More bytes needed, or a protocol error: the server closes
            // the connection.
            Ok(None) | Err(_) => return,
        }
    }
}

/// One message off the buffer. pgwire 0.41's decoder panics on some
/// malformed frames (a Bind whose format count runs past the frame reads
/// out of bounds; fuzz/regressions/pg_frontend/startup-then-bind-huge-count).
/// In the server that panic ends the connection's task and nothing else
/// (tests/it/pgwire.rs sends those bytes to a running server), so with
/// `contain_panics` a panic counts as a closed connection here too.
fn decode(
    buf: &mut BytesMut,
    ctx: &DecodeContext,
    contain_panics: bool,
) -> pgwire::error::PgWireResult<Option<PgWireFrontendMessage>> {
    if !contain_panics {
        return PgWireFrontendMessage::decode(buf, ctx);
    }
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        PgWireFrontendMessage::decode(buf, ctx)
    }))
    .unwrap_or(Ok(None))
}

/// The SQL entry point of both front doors: the PostgreSQL door's nesting
/// check and parser, and the Flight door's placeholder rewrite.
pub fn sql_text(data: &[u8]) {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::pg::parse_sql(sql);
    let numbered = quipu_scheduler::lexer::number_placeholders(sql);
    let _ = crate::pg::parse_sql(&numbered);
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// Every input kept under `fuzz/regressions/<target>/` (crashes the
    /// fuzzers found, and the malformed inputs of the wire tests) goes
    /// through its target again.
    #[test]
    fn regression_inputs_do_not_panic() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
        let mut replayed = 0;
        for (target, run) in [
            ("pg_frontend", super::pg_frontend as fn(&[u8])),
            ("sql_text", super::sql_text as fn(&[u8])),
        ] {
            let dir = root.join(target);
            let entries = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| run(&data));
                assert!(outcome.is_ok(), "{target} panicked on {}", path.display());
                replayed += 1;
            }
        }
        assert!(replayed >= 10, "only {replayed} regression inputs found");
    }

    /// A cheap stand-in for a fuzzer run on stable Rust: each small
    /// regression input (up to 2 KiB; the big ones take seconds each to
    /// parse in a debug build) mutated 100 ways (bit flips, truncation, byte insertions,
    /// length fields set to extremes) with a fixed seed, through both
    /// targets. Not coverage-guided: `cargo +nightly fuzz run` is.
    #[test]
    fn mutated_regression_inputs_do_not_panic() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut seeds = Vec::new();
        for target in ["pg_frontend", "sql_text"] {
            for entry in std::fs::read_dir(root.join(target)).unwrap() {
                let data = std::fs::read(entry.unwrap().path()).unwrap();
                if data.len() <= 2048 {
                    seeds.push(data);
                }
            }
        }
        for seed in &seeds {
            for _ in 0..100 {
                let mut data = seed.clone();
                let n = (next() % 4) as usize;
                for _ in 0..=n {
                    let len = data.len().max(1);
                    let at = (next() as usize) % len;
                    match next() % 4 {
                        0 if !data.is_empty() => data[at] ^= 1 << (next() % 8),
                        1 => data.truncate(at),
                        2 => data.insert(at.min(data.len()), next() as u8),
                        _ if data.len() >= at + 4 => {
                            let v: u32 = [0, 1, 4, 0x7fff_ffff, 0xffff_ffff][(next() % 5) as usize];
                            data[at..at + 4].copy_from_slice(&v.to_be_bytes());
                        }
                        _ => {}
                    }
                }
                let outcome = std::panic::catch_unwind(|| {
                    super::pg_frontend(&data);
                    super::sql_text(&data);
                });
                assert!(outcome.is_ok(), "panicked on {data:?}");
            }
        }
    }
}
