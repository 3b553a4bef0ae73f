//! The Flight SQL front door's limits on what a client can make it hold:
//! token sessions (a cap per user, an idle expiry), failed sign-ins (a
//! growing delay per user name) and connections (closed when idle).
//!
//! The tables here take the time as an argument so their tests need no
//! clock.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The token sessions of the front door, with a cap per user and an idle
/// expiry.
pub(crate) struct SessionTable<S> {
    max_per_user: usize,
    idle: Duration,
    entries: HashMap<String, Entry<S>>,
}

struct Entry<S> {
    user: String,
    value: Arc<S>,
    last_used: Instant,
}

/// A token's session, or why there is none.
pub(crate) enum Lookup<S> {
    Live(Arc<S>),
    /// Idle too long: removed now (the caller frees what it held).
    Expired,
    Unknown,
}

/// What opening a session made room with: the tokens the caller must
/// forget.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Opened {
    /// Idle longer than the expiry.
    pub expired: Vec<String>,
    /// The user's least recently used session, closed for the new one.
    pub evicted: Option<String>,
}

/// The user has `max_per_user` sessions, each serving a call right now.
#[derive(Debug, PartialEq)]
pub(crate) struct AllBusy;

impl<S> SessionTable<S> {
    pub fn new(max_per_user: usize, idle: Duration) -> Self {
        SessionTable {
            max_per_user: max_per_user.max(1),
            idle,
            entries: HashMap::new(),
        }
    }

    pub fn max_per_user(&self) -> usize {
        self.max_per_user
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// A session is in use while a call holds its `Arc` (the table holds
    /// one): such a session is neither evicted nor expired, so no call
    /// goes on filling state for a token already forgotten.
    fn busy(e: &Entry<S>) -> bool {
        Arc::strong_count(&e.value) > 1
    }

    /// Adds a session for `user`. At the user's cap the least recently
    /// used of its sessions not serving a call is closed for it; when
    /// every one is serving a call, the new one is refused.
    pub fn open(
        &mut self,
        token: String,
        user: &str,
        value: Arc<S>,
        now: Instant,
    ) -> Result<Opened, AllBusy> {
        let mut opened = Opened {
            expired: self.expire(now),
            evicted: None,
        };
        let mine: Vec<(&String, &Entry<S>)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.user == user)
            .collect();
        if mine.len() >= self.max_per_user {
            let lru = mine
                .into_iter()
                .filter(|(_, e)| !Self::busy(e))
                .min_by_key(|(_, e)| e.last_used)
                .map(|(t, _)| t.clone())
                .ok_or(AllBusy)?;
            self.entries.remove(&lru);
            opened.evicted = Some(lru);
        }
        self.entries.insert(
            token,
            Entry {
                user: user.to_string(),
                value,
                last_used: now,
            },
        );
        Ok(opened)
    }

    /// The session of `token` (compared in constant time), marked used.
    pub fn get(&mut self, token: &str, now: Instant) -> Lookup<S> {
        let found = self
            .entries
            .keys()
            .find(|t| quipu_catalog::secret::constant_time_eq(t.as_bytes(), token.as_bytes()))
            .cloned();
        let Some(key) = found else {
            return Lookup::Unknown;
        };
        let e = self.entries.get_mut(&key).expect("found above");
        if now.saturating_duration_since(e.last_used) > self.idle && !Self::busy(e) {
            self.entries.remove(&key);
            return Lookup::Expired;
        }
        e.last_used = now;
        Lookup::Live(e.value.clone())
    }

    pub fn remove(&mut self, token: &str) {
        self.entries.remove(token);
    }

    /// Removes the sessions idle longer than the expiry (and not serving
    /// a call); their tokens.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let idle = self.idle;
        let expired: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.last_used) > idle && !Self::busy(e))
            .map(|(t, _)| t.clone())
            .collect();
        for t in &expired {
            self.entries.remove(t);
        }
        expired
    }
}

/// The first delay after a failed sign-in; it doubles with each further
/// failure up to [`LOGIN_DELAY_CAP`].
pub(crate) const LOGIN_DELAY_BASE: Duration = Duration::from_millis(100);
pub(crate) const LOGIN_DELAY_CAP: Duration = Duration::from_secs(5);
/// Failures of a name this long ago are forgotten.
const LOGIN_FORGET: Duration = Duration::from_secs(15 * 60);
/// Attempts queued for one name beyond this wait are refused at once.
const LOGIN_MAX_WAIT: Duration = Duration::from_secs(30);
/// Names with failures remembered at once (the oldest go first).
const LOGIN_MAX_NAMES: usize = 10_000;

/// Failed sign-ins per user name. The name is the one the client sent,
/// whether or not such a user exists, so an unknown name is slowed
/// exactly as a known one (its timing tells nothing about existence).
/// Names are kept as their SHA-256, so a client sending long names does
/// not make the table large.
#[derive(Default)]
pub(crate) struct LoginBackoff {
    names: HashMap<NameKey, Failures>,
}

type NameKey = [u8; 32];

fn name_key(name: &str) -> NameKey {
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

struct Failures {
    count: u32,
    /// The earliest start of the next attempt with this name.
    next: Instant,
    last_failure: Instant,
}

/// Too many attempts with one name are already waiting.
#[derive(Debug, PartialEq)]
pub(crate) struct TooManyAttempts;

/// The wait before the attempt that follows `failures` failures.
pub(crate) fn login_delay(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32 << (failures - 1).min(16);
    LOGIN_DELAY_BASE.saturating_mul(factor).min(LOGIN_DELAY_CAP)
}

impl LoginBackoff {
    /// When an attempt with `name` may check its password: now for a name
    /// without recent failures; else after the delay its failures earned,
    /// one attempt per delay (concurrent attempts queue, so parallel
    /// guessing gains nothing).
    pub fn admit(&mut self, name: &str, now: Instant) -> Result<Instant, TooManyAttempts> {
        let key = name_key(name);
        let Some(f) = self.names.get_mut(&key) else {
            return Ok(now);
        };
        if now.saturating_duration_since(f.last_failure) > LOGIN_FORGET && f.next <= now {
            self.names.remove(&key);
            return Ok(now);
        }
        let start = f.next.max(now);
        if start - now > LOGIN_MAX_WAIT {
            return Err(TooManyAttempts);
        }
        f.next = start + login_delay(f.count);
        Ok(start)
    }

    pub fn failed(&mut self, name: &str, now: Instant) {
        let key = name_key(name);
        if !self.names.contains_key(&key) && self.names.len() >= LOGIN_MAX_NAMES {
            self.names.retain(|_, f| {
                now.saturating_duration_since(f.last_failure) <= LOGIN_FORGET || f.next > now
            });
            if self.names.len() >= LOGIN_MAX_NAMES
                && let Some(oldest) = self
                    .names
                    .iter()
                    .min_by_key(|(_, f)| f.last_failure)
                    .map(|(n, _)| *n)
            {
                self.names.remove(&oldest);
            }
        }
        let f = self.names.entry(key).or_insert(Failures {
            count: 0,
            next: now,
            last_failure: now,
        });
        f.count = f.count.saturating_add(1);
        f.last_failure = now;
        f.next = f.next.max(now + login_delay(f.count));
    }

    pub fn succeeded(&mut self, name: &str) {
        self.names.remove(&name_key(name));
    }

    /// Failures remembered for `name`.
    #[cfg(test)]
    pub fn failures(&self, name: &str) -> u32 {
        self.names.get(&name_key(name)).map_or(0, |f| f.count)
    }
}

/// Whether a connection has started a call yet.
pub(crate) struct ConnState {
    called: AtomicBool,
}

impl ConnState {
    pub fn call(&self) {
        self.called.store(true, Ordering::Relaxed);
    }
}

/// The request extension that ties a call to its connection.
#[derive(Clone)]
pub(crate) struct FlightConn {
    pub state: Arc<ConnState>,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
}

/// A connection closed when it has not started a call within
/// `first_call`: a client that connects and says nothing (not even the
/// TLS or HTTP/2 preface), or only sets up HTTP/2, does not hold a
/// connection forever. Later quiet is the business of HTTP/2 keepalive
/// (dead peers) and the maximum connection age (live but idle ones),
/// both of which end a connection without failing a client's next call.
pub(crate) struct SilentIo<T> {
    io: T,
    conn: FlightConn,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> SilentIo<T> {
    pub fn new(
        io: T,
        first_call: Duration,
        local: Option<SocketAddr>,
        remote: Option<SocketAddr>,
    ) -> Self {
        SilentIo {
            io,
            conn: FlightConn {
                state: Arc::new(ConnState {
                    called: AtomicBool::new(false),
                }),
                local,
                remote,
            },
            timer: Some(Box::pin(tokio::time::sleep(first_call))),
        }
    }

    /// `Ready` once the deadline passed without a call.
    fn poll_silent(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.conn.state.called.load(Ordering::Relaxed) {
            self.timer = None;
        }
        let Some(timer) = &mut self.timer else {
            return Poll::Pending;
        };
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if self.conn.state.called.load(Ordering::Relaxed) {
            self.timer = None;
            return Poll::Pending;
        }
        Poll::Ready(())
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SilentIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Pending => {}
            ready => return ready,
        }
        match this.poll_silent(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                flight_metrics().silent_connections_closed.inc();
                tracing::debug!(peer = ?this.conn.remote, "closing a Flight SQL connection that made no call");
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "Flight SQL connection closed: no call within the first-call timeout",
                )))
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SilentIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<T> tonic::transport::server::Connected for SilentIo<T> {
    type ConnectInfo = FlightConn;

    fn connect_info(&self) -> FlightConn {
        self.conn.clone()
    }
}

/// The Flight service, marking each call's connection as having called
/// (see [`SilentIo`]).
#[derive(Clone)]
pub(crate) struct MarkCalls<S> {
    pub inner: S,
}

type HttpRequest = tonic::codegen::http::Request<tonic::body::Body>;

impl<S> tonic::codegen::Service<HttpRequest> for MarkCalls<S>
where
    S: tonic::codegen::Service<HttpRequest>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: HttpRequest) -> Self::Future {
        if let Some(conn) = req.extensions().get::<FlightConn>().cloned() {
            conn.state.call();
            // What `Request::remote_addr` reads.
            req.extensions_mut()
                .insert(tonic::transport::server::TcpConnectInfo {
                    local_addr: conn.local,
                    remote_addr: conn.remote,
                });
        }
        self.inner.call(req)
    }
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for MarkCalls<S> {
    const NAME: &'static str = S::NAME;
}

/// The front door's Prometheus metrics, in the process registry
/// (docs/configuration.md, Metrics).
pub(crate) struct FlightMetrics {
    pub sessions: IntGauge,
    pub sessions_closed: IntCounterVec,
    pub sessions_refused: IntCounter,
    pub login_failures: IntCounter,
    pub logins_delayed: IntCounter,
    pub logins_refused: IntCounter,
    pub silent_connections_closed: IntCounter,
}

fn build_metrics() -> prometheus::Result<FlightMetrics> {
    let m = FlightMetrics {
        sessions: IntGauge::new(
            "quipu_flight_sessions",
            "Flight SQL token sessions held by the front door",
        )?,
        sessions_closed: IntCounterVec::new(
            Opts::new(
                "quipu_flight_sessions_closed_total",
                "Flight SQL sessions closed by the server, by reason (idle, user_cap)",
            ),
            &["reason"],
        )?,
        sessions_refused: IntCounter::new(
            "quipu_flight_sessions_refused_total",
            "Flight SQL sign-ins refused because all the user's sessions were serving calls",
        )?,
        login_failures: IntCounter::new(
            "quipu_flight_login_failures_total",
            "Flight SQL handshakes with a wrong user name or password",
        )?,
        logins_delayed: IntCounter::new(
            "quipu_flight_logins_delayed_total",
            "Flight SQL handshakes made to wait after failed sign-ins with their user name",
        )?,
        logins_refused: IntCounter::new(
            "quipu_flight_logins_refused_total",
            "Flight SQL handshakes refused because too many attempts with their user name waited",
        )?,
        silent_connections_closed: IntCounter::new(
            "quipu_flight_silent_connections_closed_total",
            "Flight SQL connections closed for making no call within the first-call timeout",
        )?,
    };
    let r = &quipu_connectors::metrics::metrics().registry;
    r.register(Box::new(m.sessions.clone()))?;
    r.register(Box::new(m.sessions_closed.clone()))?;
    r.register(Box::new(m.sessions_refused.clone()))?;
    r.register(Box::new(m.login_failures.clone()))?;
    r.register(Box::new(m.logins_delayed.clone()))?;
    r.register(Box::new(m.logins_refused.clone()))?;
    r.register(Box::new(m.silent_connections_closed.clone()))?;
    Ok(m)
}

pub(crate) fn flight_metrics() -> &'static FlightMetrics {
    static METRICS: OnceLock<FlightMetrics> = OnceLock::new();
    // Fixed, valid names not registered elsewhere: cannot fail.
    METRICS.get_or_init(|| build_metrics().expect("static metric definitions are valid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn at_the_cap_the_least_recently_used_session_goes() {
        let t0 = Instant::now();
        let mut table = SessionTable::new(3, secs(600));
        for (i, tok) in ["a", "b", "c"].into_iter().enumerate() {
            let opened = table
                .open(tok.into(), "ana", Arc::new(()), t0 + secs(i as u64))
                .unwrap();
            assert_eq!(opened, Opened::default());
        }
        // Another user's sessions do not count against ana's.
        table.open("x".into(), "boss", Arc::new(()), t0).unwrap();
        // "a" is used again: "b" is now the least recently used.
        assert!(matches!(table.get("a", t0 + secs(10)), Lookup::Live(_)));
        let opened = table
            .open("d".into(), "ana", Arc::new(()), t0 + secs(11))
            .unwrap();
        assert_eq!(opened.evicted.as_deref(), Some("b"));
        assert!(matches!(table.get("b", t0 + secs(12)), Lookup::Unknown));
        assert_eq!(table.len(), 4);
        for tok in ["a", "c", "d", "x"] {
            assert!(matches!(table.get(tok, t0 + secs(12)), Lookup::Live(_)));
        }
    }

    #[test]
    fn sessions_serving_a_call_are_not_evicted() {
        let t0 = Instant::now();
        let mut table = SessionTable::new(2, secs(600));
        table.open("a".into(), "ana", Arc::new(()), t0).unwrap();
        table
            .open("b".into(), "ana", Arc::new(()), t0 + secs(1))
            .unwrap();
        // "a", the least recently used, is serving a call.
        let Lookup::Live(held_a) = table.get("a", t0 + secs(2)) else {
            panic!("a is live")
        };
        let opened = table
            .open("c".into(), "ana", Arc::new(()), t0 + secs(3))
            .unwrap();
        assert_eq!(opened.evicted.as_deref(), Some("b"));
        let Lookup::Live(held_c) = table.get("c", t0 + secs(4)) else {
            panic!("c is live")
        };
        // Both serving calls: the next sign-in is refused.
        assert_eq!(
            table
                .open("d".into(), "ana", Arc::new(()), t0 + secs(5))
                .unwrap_err(),
            AllBusy
        );
        drop((held_a, held_c));
        let opened = table
            .open("d".into(), "ana", Arc::new(()), t0 + secs(6))
            .unwrap();
        assert_eq!(opened.evicted.as_deref(), Some("a"));
    }

    #[test]
    fn idle_sessions_expire_unless_serving_a_call() {
        let t0 = Instant::now();
        let mut table = SessionTable::new(64, secs(60));
        table.open("a".into(), "ana", Arc::new(()), t0).unwrap();
        table.open("b".into(), "ana", Arc::new(()), t0).unwrap();
        table.open("c".into(), "ana", Arc::new(()), t0).unwrap();
        assert!(matches!(table.get("b", t0 + secs(50)), Lookup::Live(_)));
        let Lookup::Live(held) = table.get("c", t0 + secs(50)) else {
            panic!("c is live")
        };
        // "a" idle 61 s: gone at the lookup.
        assert!(matches!(table.get("a", t0 + secs(61)), Lookup::Expired));
        assert!(matches!(table.get("a", t0 + secs(61)), Lookup::Unknown));
        // The sweep takes "b" but not "c", which a call holds.
        assert_eq!(table.expire(t0 + secs(111)), vec!["b".to_string()]);
        drop(held);
        assert_eq!(table.expire(t0 + secs(111)), vec!["c".to_string()]);
        assert_eq!(table.len(), 0);
        // Opening a session sweeps too.
        table.open("d".into(), "boss", Arc::new(()), t0).unwrap();
        let opened = table
            .open("e".into(), "ana", Arc::new(()), t0 + secs(100))
            .unwrap();
        assert_eq!(opened.expired, vec!["d".to_string()]);
    }

    #[test]
    fn login_delays_double_to_a_cap() {
        assert_eq!(login_delay(0), Duration::ZERO);
        assert_eq!(login_delay(1), Duration::from_millis(100));
        assert_eq!(login_delay(2), Duration::from_millis(200));
        assert_eq!(login_delay(4), Duration::from_millis(800));
        assert_eq!(login_delay(7), LOGIN_DELAY_CAP);
        assert_eq!(login_delay(u32::MAX), LOGIN_DELAY_CAP);
    }

    #[test]
    fn failed_sign_ins_slow_the_name_down() {
        let t0 = Instant::now();
        let mut b = LoginBackoff::default();
        assert_eq!(b.admit("boss", t0), Ok(t0));
        b.failed("boss", t0);
        // The next attempt waits 100 ms; one queued behind it 100 ms more.
        assert_eq!(b.admit("boss", t0), Ok(t0 + Duration::from_millis(100)));
        assert_eq!(b.admit("boss", t0), Ok(t0 + Duration::from_millis(200)));
        b.failed("boss", t0 + Duration::from_millis(100));
        assert_eq!(b.failures("boss"), 2);
        // Other names are not slowed.
        assert_eq!(b.admit("ana", t0), Ok(t0));
        // A success forgets the failures.
        b.succeeded("boss");
        let t1 = t0 + secs(1);
        assert_eq!(b.admit("boss", t1), Ok(t1));
        // Many failures: a 5 s delay at most, and a long queue is refused.
        for _ in 0..20 {
            b.failed("nobody", t1);
        }
        assert_eq!(b.admit("nobody", t1), Ok(t1 + LOGIN_DELAY_CAP));
        let mut refused = false;
        for _ in 0..10 {
            refused |= b.admit("nobody", t1) == Err(TooManyAttempts);
        }
        assert!(refused, "a queue beyond {LOGIN_MAX_WAIT:?} is refused");
        // Failures long ago are forgotten.
        let later = t1 + LOGIN_FORGET + secs(120);
        assert_eq!(b.admit("nobody", later), Ok(later));
        assert_eq!(b.failures("nobody"), 0);
    }

    #[test]
    fn the_failure_table_is_bounded() {
        let t0 = Instant::now();
        let mut b = LoginBackoff::default();
        for i in 0..LOGIN_MAX_NAMES + 10 {
            b.failed(&format!("u{i}"), t0 + Duration::from_millis(i as u64));
        }
        assert!(b.names.len() <= LOGIN_MAX_NAMES);
        assert_eq!(b.failures("u0"), 0, "the oldest went first");
        assert_eq!(b.failures(&format!("u{}", LOGIN_MAX_NAMES + 9)), 1);
    }

    #[tokio::test]
    async fn a_connection_without_a_call_is_closed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let first_call = Duration::from_millis(200);
        // Bytes alone (a TLS or HTTP/2 preface) do not keep it open.
        let (mut client, server) = tokio::io::duplex(64);
        let mut io = SilentIo::new(server, first_call, None, None);
        client.write_all(b"PRI ").await.unwrap();
        let mut buf = [0u8; 4];
        io.read_exact(&mut buf).await.unwrap();
        let started = Instant::now();
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= first_call / 2);
        // A call keeps it open past the deadline.
        let (_client, server) = tokio::io::duplex(64);
        let mut io = SilentIo::new(server, first_call, None, None);
        io.conn.state.call();
        let read = tokio::time::timeout(first_call * 5, io.read(&mut buf)).await;
        assert!(read.is_err(), "still open after a call");
    }
}
