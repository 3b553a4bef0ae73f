//! Determinism helpers: a stateless 64-bit mixer for attributes other tables
//! must agree on (a product's price, a customer's email), a seeded stream per
//! chunk for everything else, and fast text formatting of dates and money.
//!
//! Every chunk of every table draws from its own stream seeded by
//! `(seed, table, chunk)`, so output does not depend on the order in which
//! chunks are produced or on how many run at once.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// SplitMix64's finaliser: a good bijective mixer, stable across platforms.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of a seed, a table tag and up to two indexes.
pub fn h(seed: u64, tag: u64, a: u64, b: u64) -> u64 {
    mix64(mix64(mix64(seed ^ tag.wrapping_mul(0xA24B_AED4_963E_E407)) ^ a) ^ b.rotate_left(17))
}

/// A uniform float in [0, 1) from a hash.
pub fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The stream of one chunk of one table.
pub struct ChunkRng(ChaCha8Rng);

impl ChunkRng {
    pub fn new(seed: u64, tag: u64, chunk: u64) -> Self {
        ChunkRng(ChaCha8Rng::seed_from_u64(h(seed, tag, chunk, 0)))
    }
    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        self.0.random_range(0..n)
    }
    /// Uniform in [lo, hi].
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        self.0.random_range(lo..=hi)
    }
    pub fn unit(&mut self) -> f64 {
        self.0.random::<f64>()
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// Index skewed towards 0 (popular items first): `n * u^k`.
    pub fn skewed(&mut self, n: u64, k: f64) -> u64 {
        ((n as f64) * self.unit().powf(k)).min((n - 1) as f64) as u64
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    pub fn u64(&mut self) -> u64 {
        self.0.random()
    }
}

/// Picks by weight from `(item, weight)` pairs with a unit-interval draw.
pub fn weighted<T: Copy>(items: &[(T, u32)], u: f64) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut target = u * total as f64;
    for (item, w) in items {
        if target < *w as f64 {
            return *item;
        }
        target -= *w as f64;
    }
    items[items.len() - 1].0
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) to days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn push_2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

/// `YYYY-MM-DD`.
pub fn push_date(out: &mut Vec<u8>, days: i64) {
    let (y, m, d) = civil(days);
    push_int(out, y);
    out.push(b'-');
    push_2(out, m);
    out.push(b'-');
    push_2(out, d);
}

/// `YYYY-MM-DD HH:MM:SS` (sep = b' ') or `YYYY-MM-DDTHH:MM:SS` (sep = b'T').
pub fn push_ts(out: &mut Vec<u8>, secs: i64, sep: u8) {
    push_date(out, secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400) as u32;
    out.push(sep);
    push_2(out, s / 3600);
    out.push(b':');
    push_2(out, s / 60 % 60);
    out.push(b':');
    push_2(out, s % 60);
}

pub fn push_int(out: &mut Vec<u8>, v: i64) {
    let mut buf = itoa_buf(v);
    out.append(&mut buf);
}

fn itoa_buf(v: i64) -> Vec<u8> {
    let mut n = v.unsigned_abs();
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut out = Vec::with_capacity(21);
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&tmp[i..]);
    out
}

/// Cents as `D.CC`.
pub fn push_cents(out: &mut Vec<u8>, cents: i64) {
    if cents < 0 {
        out.push(b'-');
    }
    let c = cents.unsigned_abs();
    push_int(out, (c / 100) as i64);
    out.push(b'.');
    push_2(out, (c % 100) as u32);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips() {
        for days in [-1000, 0, 59, 60, 365, 10_957, 20_393, 20_758, 30_000] {
            let (y, m, d) = civil(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2026, 11, 1), 20_758);
        let mut s = Vec::new();
        push_ts(&mut s, 20_758 * 86_400 + 3_723, b' ');
        assert_eq!(String::from_utf8(s).unwrap(), "2026-11-01 01:02:03");
    }

    #[test]
    fn money_and_ints_format() {
        let mut s = Vec::new();
        push_cents(&mut s, 123_405);
        s.push(b' ');
        push_cents(&mut s, -7);
        s.push(b' ');
        push_int(&mut s, -42);
        assert_eq!(String::from_utf8(s).unwrap(), "1234.05 -0.07 -42");
    }

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| ChunkRng::new(1, 2, 3).u64()).collect();
        assert!(a.iter().all(|x| *x == a[0]));
        assert_ne!(ChunkRng::new(1, 2, 3).u64(), ChunkRng::new(2, 2, 3).u64());
        assert_ne!(ChunkRng::new(1, 2, 3).u64(), ChunkRng::new(1, 2, 4).u64());
    }
}
