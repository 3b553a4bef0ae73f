//! CRM and POS rows as PostgreSQL COPY text, one chunk at a time.
//!
//! Each function returns the chunk's bytes and its row count; calling it
//! twice with the same arguments gives the same bytes (orders and their lines
//! are drawn together and the caller keeps the half it is loading).

use crate::model::{
    LIVE_DAYS, Spec, T_CARD, T_CONTACT, T_ORDERS, T_TXN, as_of_day, card_id, messy_email,
};
use crate::rng::{ChunkRng, h, push_cents, push_date, push_int, push_ts, unit};

/// Rows per chunk: big enough to amortise a COPY message, small enough that
/// memory stays flat.
pub const CHUNK: u64 = 8192;

pub fn chunks(rows: u64) -> u64 {
    rows.div_ceil(CHUNK)
}

fn span(chunk: u64, rows: u64) -> std::ops::Range<u64> {
    chunk * CHUNK..((chunk + 1) * CHUNK).min(rows)
}

/// Writes one COPY text row: tab-separated, `\N` for NULL. Our generated
/// strings never contain tabs, newlines or backslashes, so no escaping.
pub struct Row<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Row<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Row { out, first: true }
    }
    fn sep(&mut self) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b'\t');
        }
        self.first = false;
        self.out
    }
    pub fn int(&mut self, v: i64) -> &mut Self {
        push_int(self.sep(), v);
        self
    }
    pub fn str(&mut self, v: &str) -> &mut Self {
        debug_assert!(!v.contains(['\t', '\n', '\\']));
        self.sep().extend_from_slice(v.as_bytes());
        self
    }
    pub fn opt_str(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.str(v),
            None => self.null(),
        }
    }
    pub fn null(&mut self) -> &mut Self {
        self.sep().extend_from_slice(b"\\N");
        self
    }
    pub fn cents(&mut self, v: i64) -> &mut Self {
        push_cents(self.sep(), v);
        self
    }
    pub fn ts(&mut self, secs: i64) -> &mut Self {
        let out = self.sep();
        push_ts(out, secs, b' ');
        out.extend_from_slice(b"+00");
        self
    }
    pub fn date(&mut self, day: i64) -> &mut Self {
        push_date(self.sep(), day);
        self
    }
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.sep().push(if v { b't' } else { b'f' });
        self
    }
    pub fn end(&mut self) {
        self.out.push(b'\n');
    }
}

// ---- CRM -----------------------------------------------------------------

pub fn customers(spec: &Spec, chunk: u64) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(CHUNK as usize * 128);
    let range = span(chunk, spec.customers);
    let n = range.end - range.start;
    for i in range {
        let c = spec.customer(i);
        let x = h(spec.seed, crate::model::T_CUSTOMER, i, 9);
        // CRM emails: mostly clean, some typed in mixed case or with spaces;
        // 3% left blank.
        let email = (x % 100 >= 3).then(|| {
            if x.is_multiple_of(7) {
                messy_email(&c.email, x >> 8)
            } else {
                c.email.clone()
            }
        });
        let phone = (x % 100 >= 15).then(|| format!("+51 9{:08}", (x >> 20) % 100_000_000));
        // Loyalty card ids as typed at sign-up: a few in lower case or padded.
        let card = c.card.as_ref().map(|card| match (x >> 12) % 25 {
            0 => card.to_lowercase(),
            1 => format!("{card} "),
            _ => card.clone(),
        });
        let city_blank = (x >> 32).is_multiple_of(50);
        Row::new(&mut out)
            .int(c.id as i64)
            .str(c.first)
            .str(c.last)
            .opt_str(email.as_deref())
            .opt_str(phone.as_deref())
            .opt_str((!city_blank).then_some(c.city.0))
            .opt_str((!city_blank).then_some(c.city.1))
            .str(c.segment)
            .opt_str(card.as_deref())
            .ts(c.created_secs)
            .end();
    }
    (out, n)
}

pub fn campaigns(spec: &Spec) -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    for c in 0..spec.campaigns {
        let c = spec.campaign(c);
        Row::new(&mut out)
            .int(c.id as i64)
            .str(&c.name)
            .str(c.channel)
            .str(&c.utm)
            .date(c.start_day)
            .date(c.end_day)
            .cents(c.budget_cents)
            .end();
    }
    (out, spec.campaigns)
}

/// A time in the live window, denser towards the end (the business grows)
/// and on a retailer's busy days (`day_weight`: weekends, paydays,
/// December), at a plausible hour.
fn live_secs(rng: &mut ChunkRng, start_day: i64, days: i64, open_hours: (i64, i64)) -> i64 {
    let day = loop {
        let day = start_day + ((days as f64) * rng.unit().powf(0.8)) as i64;
        let day = day.min(start_day + days - 1);
        // Rejection sampling: a day is kept in proportion to its weight.
        if rng.unit() * crate::model::MAX_DAY_WEIGHT < crate::model::day_weight(day, true) {
            break day;
        }
    };
    let hour = rng.range(open_hours.0, open_hours.1);
    day * 86_400 + hour * 3600 + rng.range(0, 3599)
}

/// One order's lines: (sku index, qty, unit price cents).
fn basket(spec: &Spec, rng: &mut ChunkRng) -> Vec<(u64, i64, i64)> {
    let lines = 1 + rng.below(4);
    (0..lines)
        .map(|_| {
            let k = rng.skewed(spec.products, 1.6);
            let qty = 1 + rng.skewed(3, 2.0) as i64;
            let mut price = spec.price_cents(k);
            if rng.chance(0.1) {
                price = price * (70 + rng.range(0, 20)) / 100;
            }
            (k, qty, price)
        })
        .collect()
}

pub struct OrdersChunk {
    pub orders: Vec<u8>,
    pub items: Vec<u8>,
    pub order_rows: u64,
    pub item_rows: u64,
}

pub fn orders(spec: &Spec, chunk: u64) -> OrdersChunk {
    let mut rng = ChunkRng::new(spec.seed, T_ORDERS, chunk);
    let mut orders = Vec::with_capacity(CHUNK as usize * 80);
    let mut items = Vec::with_capacity(CHUNK as usize * 100);
    let (mut order_rows, mut item_rows) = (0, 0);
    let as_of = as_of_day();
    for j in span(chunk, spec.orders) {
        let customer = 1 + rng.skewed(spec.customers, 1.3);
        let channel = if rng.chance(0.6) { "web" } else { "app" };
        // A quarter of orders come from a campaign, inside its window.
        let (secs, utm) = if rng.chance(0.25) {
            let c = spec.campaign(rng.below(spec.campaigns));
            let days = c.end_day - c.start_day + 1;
            let day = c.start_day + rng.range(0, days - 1);
            (day * 86_400 + rng.range(8 * 3600, 86_399), Some(c.utm))
        } else {
            (
                live_secs(&mut rng, spec.live_start_day(), LIVE_DAYS, (0, 23)),
                None,
            )
        };
        let age = as_of - secs.div_euclid(86_400);
        let status = if age < 3 {
            if rng.chance(0.6) { "placed" } else { "shipped" }
        } else if age < 10 {
            if rng.chance(0.5) {
                "shipped"
            } else {
                "delivered"
            }
        } else {
            let u = rng.unit();
            if u < 0.9 {
                "delivered"
            } else if u < 0.95 {
                "cancelled"
            } else {
                "returned"
            }
        };
        let lines = basket(spec, &mut rng);
        let total: i64 = lines.iter().map(|(_, q, p)| q * p).sum();
        Row::new(&mut orders)
            .int(j as i64 + 1)
            .int(customer as i64)
            .str(channel)
            .ts(secs)
            .str(status)
            .cents(total)
            .opt_str(utm.as_deref())
            .end();
        order_rows += 1;
        for (n, (k, qty, price)) in lines.iter().enumerate() {
            Row::new(&mut items)
                .int(j as i64 + 1)
                .int(n as i64 + 1)
                .str(&crate::model::sku(*k))
                .int(*qty)
                .cents(*price)
                .end();
            item_rows += 1;
        }
    }
    OrdersChunk {
        orders,
        items,
        order_rows,
        item_rows,
    }
}

/// Each campaign reaches about a fifth of the customers.
pub fn contacted(spec: &Spec, campaign: u64, customer: u64) -> bool {
    h(spec.seed, T_CONTACT, campaign, customer).is_multiple_of(5)
}

pub fn campaign_contacts(spec: &Spec, campaign: u64) -> (Vec<u8>, u64) {
    let c = spec.campaign(campaign);
    let mut out = Vec::new();
    let mut n = 0;
    for i in 0..spec.customers {
        if !contacted(spec, campaign, i) {
            continue;
        }
        let x = h(spec.seed, T_CONTACT, campaign, i ^ (1 << 62));
        let opened = x % 100 < 40;
        let clicked = opened && (x >> 8) % 100 < 30;
        Row::new(&mut out)
            .int(c.id as i64)
            .int(i as i64 + 1)
            .ts(c.start_day * 86_400 + 9 * 3600 + ((x >> 16) % 7200) as i64)
            .bool(opened)
            .bool(clicked)
            .end();
        n += 1;
    }
    (out, n)
}

// ---- POS -----------------------------------------------------------------

pub fn stores(spec: &Spec) -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    for s in 0..spec.stores {
        let s = spec.store(s);
        Row::new(&mut out)
            .int(s.id as i64)
            .str(&s.name)
            .str(s.city.0)
            .str(s.city.1)
            .date(s.opened_day)
            .end();
    }
    (out, spec.stores)
}

pub fn loyalty_cards(spec: &Spec, chunk: u64) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(CHUNK as usize * 64);
    let range = span(chunk, spec.cards());
    let n = range.end - range.start;
    for k in range {
        let x = h(spec.seed, T_CARD, k, 0);
        let tier = crate::rng::weighted(
            &[
                ("bronze", 60),
                ("silver", 25),
                ("gold", 12),
                ("platinum", 3),
            ],
            unit(x),
        );
        // The email the card holder gave at the till: often missing, often
        // typed differently from the CRM.
        let owner = spec
            .card_owner(k)
            .filter(|_| (x >> 8) % 10 < 7)
            .or_else(|| spec.unlinked_card_email_owner(k));
        let email = owner.map(|i| messy_email(&spec.customer(i).email, x >> 16));
        let issued = spec.live_start_day() - 2 * 365
            + (unit(h(spec.seed, T_CARD, k, 1)) * (2.0 * 365.0 + 300.0)) as i64;
        Row::new(&mut out)
            .str(&card_id(k))
            .str(tier)
            .ts(issued * 86_400 + ((x >> 24) % 36_000) as i64 + 32_400)
            .opt_str(email.as_deref())
            .end();
    }
    (out, n)
}

pub struct TxnChunk {
    pub txns: Vec<u8>,
    pub lines: Vec<u8>,
    pub txn_rows: u64,
    pub line_rows: u64,
}

pub fn transactions(spec: &Spec, chunk: u64) -> TxnChunk {
    let mut rng = ChunkRng::new(spec.seed, T_TXN, chunk);
    let mut txns = Vec::with_capacity(CHUNK as usize * 80);
    let mut lines_out = Vec::with_capacity(CHUNK as usize * 100);
    let (mut txn_rows, mut line_rows) = (0, 0);
    for t in span(chunk, spec.transactions) {
        let store = 1 + rng.skewed(spec.stores, 1.4);
        let terminal = format!("T{store:02}-{}", 1 + rng.below(4));
        let card = rng.chance(0.55).then(|| card_id(rng.below(spec.cards())));
        let secs = live_secs(&mut rng, spec.live_start_day(), LIVE_DAYS, (9, 21));
        let payment = {
            let u = rng.unit();
            if u < 0.01 {
                None
            } else if u < 0.3 {
                Some("cash")
            } else if u < 0.85 {
                Some("card")
            } else {
                Some("mobile")
            }
        };
        let basket = basket(spec, &mut rng);
        let mut total = 0;
        for (n, (k, qty, price)) in basket.iter().enumerate() {
            let discount = if rng.chance(0.15) {
                qty * price * rng.range(5, 20) / 100
            } else {
                0
            };
            total += qty * price - discount;
            Row::new(&mut lines_out)
                .int(t as i64 + 1)
                .int(n as i64 + 1)
                .str(&crate::model::sku(*k))
                .int(*qty)
                .cents(*price)
                .cents(discount)
                .end();
            line_rows += 1;
        }
        Row::new(&mut txns)
            .int(t as i64 + 1)
            .int(store as i64)
            .str(&terminal)
            .opt_str(card.as_deref())
            .ts(secs)
            .opt_str(payment)
            .cents(total)
            .end();
        txn_rows += 1;
    }
    TxnChunk {
        txns,
        lines: lines_out,
        txn_rows,
        line_rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_deterministic_and_totals_add_up() {
        let spec = Spec::new(0.01, 3).unwrap();
        let a = orders(&spec, 1);
        let b = orders(&spec, 1);
        assert_eq!(a.orders, b.orders);
        assert_eq!(a.items, b.items);
        assert_eq!(a.order_rows, CHUNK.min(spec.orders - CHUNK));
        let other = orders(&Spec::new(0.01, 4).unwrap(), 1);
        assert_ne!(a.orders, other.orders);
        // Each order's total equals the sum of its lines.
        let text = String::from_utf8(a.items).unwrap();
        let mut sums = std::collections::HashMap::<String, f64>::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            *sums.entry(f[0].to_string()).or_default() +=
                f[3].parse::<f64>().unwrap() * f[4].parse::<f64>().unwrap();
        }
        for line in String::from_utf8(a.orders).unwrap().lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let total: f64 = f[5].parse().unwrap();
            assert!((sums[f[0]] - total).abs() < 0.005, "order {}", f[0]);
        }
    }
}
