//! The Yachay-Shop world: sizes per scale factor, the calendar, and the
//! attributes that several systems must agree on (a customer's email and
//! loyalty card, a product's category and price, a campaign's window), each a
//! pure function of the seed and an index so that no table has to be kept in
//! memory to generate another.

use crate::error::{GenError, Result};
use crate::rng::{days_from_civil, h, unit, weighted};

/// First day after the live window: the data is "as of" 2026-10-31.
pub fn as_of_day() -> i64 {
    days_from_civil(2026, 11, 1)
}
/// How busy a day is for a retailer, relative to an ordinary weekday in
/// an ordinary month: weekends (Saturday most), paydays (the 1st, the
/// 15th and the last day of the month, and the day after each), and the
/// season when `with_month` (November's sales, December's gifts,
/// January's lull). Sales dates are drawn in proportion to it, so weekly
/// and yearly patterns are there for forecasts to find (issue 21). The
/// archived history weights whole months itself and asks without the
/// month.
pub fn day_weight(day: i64, with_month: bool) -> f64 {
    // 1970-01-01 was a Thursday; 0 = Monday.
    let weekday = [0.85, 0.85, 0.9, 0.95, 1.1, 1.35, 1.2][(day + 3).rem_euclid(7) as usize];
    let (_, m, d) = crate::rng::civil(day);
    let last = crate::rng::civil(day + 1).2 == 1;
    let payday = if last || matches!(d, 1 | 2 | 15 | 16) {
        1.3
    } else {
        1.0
    };
    let month = if !with_month {
        1.0
    } else {
        match m {
            11 => 1.15,
            12 => 1.6,
            1 => 0.8,
            _ => 1.0,
        }
    };
    weekday * payday * month
}

/// The largest [`day_weight`]: Saturday, payday, December.
pub const MAX_DAY_WEIGHT: f64 = 1.35 * 1.3 * 1.6;

/// The live systems (CRM orders, POS) hold the last 365 days.
pub const LIVE_DAYS: i64 = 365;
/// Clickstream covers the last 90 days.
pub const CLICK_DAYS: i64 = 90;
/// The lake's sales history holds the 36 months before the live window.
pub const HISTORY_MONTHS: i64 = 36;
/// Warehouses (location ids 1001..) besides the stores.
pub const WAREHOUSES: u64 = 5;
pub const WAREHOUSE_ID_BASE: u64 = 1000;
/// Archived order ids start here, away from the live ones.
pub const HISTORY_ORDER_ID_BASE: u64 = 100_000_000;

// Table tags for the hash streams (stable forever: changing one changes data).
pub const T_CUSTOMER: u64 = 1;
pub const T_ORDERS: u64 = 2;
pub const T_CONTACT: u64 = 3;
pub const T_CAMPAIGN: u64 = 4;
pub const T_STORE: u64 = 5;
pub const T_CARD: u64 = 6;
pub const T_TXN: u64 = 7;
pub const T_PRODUCT: u64 = 8;
pub const T_STOCK: u64 = 9;
pub const T_MOVE: u64 = 10;
pub const T_CLICK: u64 = 11;
pub const T_VISITOR: u64 = 12;
pub const T_FB: u64 = 13;
pub const T_HISTORY: u64 = 14;
pub const T_REVIEW: u64 = 15;
pub const T_GA: u64 = 16;

/// Sizes for one scale factor (DATASET.md: SF 1 = 100k customers, 1M online
/// orders, 50 stores, 2M POS transactions, 20k SKUs, 55 stock locations,
/// 5M clickstream events over 90 days, 40 campaigns). Small floors keep tiny
/// scale factors meaningful (every store and campaign kind exists).
#[derive(Debug, Clone)]
pub struct Spec {
    pub seed: u64,
    pub scale: f64,
    pub customers: u64,
    pub orders: u64,
    pub campaigns: u64,
    pub stores: u64,
    pub transactions: u64,
    pub products: u64,
    pub linked_cards: u64,
    pub unlinked_cards: u64,
    pub movements: u64,
    pub click_events: u64,
    pub history_orders: u64,
    pub reviews: u64,
}

fn scaled(n: f64, sf: f64, floor: u64) -> u64 {
    ((n * sf).round() as u64).max(floor)
}

impl Spec {
    pub fn new(scale: f64, seed: u64) -> Result<Spec> {
        if !scale.is_finite() || scale <= 0.0 {
            return Err(GenError::BadScale(format!(
                "scale factor must be a positive number, got {scale}"
            )));
        }
        if scale > 1000.0 {
            return Err(GenError::BadScale(format!(
                "scale factor {scale} is above the supported maximum of 1000"
            )));
        }
        let customers = scaled(100_000.0, scale, 50);
        Ok(Spec {
            seed,
            scale,
            customers,
            orders: scaled(1_000_000.0, scale, 100),
            campaigns: scaled(40.0, scale, 8),
            stores: scaled(50.0, scale, 3),
            transactions: scaled(2_000_000.0, scale, 100),
            products: scaled(20_000.0, scale, 40),
            // 60% of customers have a card linked in the CRM; 15% more cards
            // exist that the CRM does not know (half of them carry an email
            // that matches a customer, the rest are anonymous).
            linked_cards: (customers as f64 * 0.6).round() as u64,
            unlinked_cards: (customers as f64 * 0.15).round() as u64,
            movements: scaled(500_000.0, scale, 100),
            click_events: scaled(5_000_000.0, scale, 500),
            history_orders: scaled(1_500_000.0, scale, 100),
            reviews: scaled(50_000.0, scale, 20),
        })
    }

    pub fn cards(&self) -> u64 {
        self.linked_cards + self.unlinked_cards
    }
    pub fn locations(&self) -> u64 {
        self.stores + WAREHOUSES
    }
    pub fn live_start_day(&self) -> i64 {
        as_of_day() - LIVE_DAYS
    }
    pub fn click_start_day(&self) -> i64 {
        as_of_day() - CLICK_DAYS
    }

    /// A bijection on customer indexes used to hand out loyalty cards, so that
    /// the linked customers are spread over the id range.
    fn perm_mult(&self) -> u64 {
        let n = self.customers;
        [7919u64, 104_729, 1_299_709, 15_485_863]
            .into_iter()
            .find(|p| !n.is_multiple_of(*p))
            .unwrap_or(1)
    }
    fn perm(&self, i: u64) -> u64 {
        let n = self.customers as u128;
        ((self.perm_mult() as u128 * i as u128 + 12_345) % n) as u64
    }
    fn perm_inv(&self, k: u64) -> u64 {
        let n = self.customers as i128;
        let inv = mod_inverse(self.perm_mult() as i128, n);
        let v = ((k as i128 - 12_345).rem_euclid(n) * inv).rem_euclid(n);
        v as u64
    }

    // ---- customers -------------------------------------------------------

    pub fn customer(&self, i: u64) -> Customer {
        let x = h(self.seed, T_CUSTOMER, i, 0);
        let first = FIRST_NAMES[(x % FIRST_NAMES.len() as u64) as usize];
        let last = LAST_NAMES[((x >> 8) % LAST_NAMES.len() as u64) as usize];
        let city = city_for(unit(h(self.seed, T_CUSTOMER, i, 1)));
        let domain = DOMAINS[((x >> 16) % DOMAINS.len() as u64) as usize];
        let email = format!(
            "{}.{}{}@{}",
            first.to_lowercase(),
            last.to_lowercase().replace(' ', ""),
            i + 1,
            domain
        );
        let k = self.perm(i);
        let card = (k < self.linked_cards).then(|| card_id(k));
        let segment = weighted(
            &[("new", 25), ("regular", 50), ("vip", 8), ("dormant", 17)],
            unit(h(self.seed, T_CUSTOMER, i, 2)),
        );
        let created = self.live_start_day() - 6 * 365
            + (unit(h(self.seed, T_CUSTOMER, i, 3)) * (7.0 * 365.0 - 1.0)) as i64;
        Customer {
            id: i + 1,
            first,
            last,
            email,
            city,
            segment,
            card,
            created_secs: created * 86_400 + (x >> 40) as i64 % 86_400,
        }
    }

    /// The customer a linked card belongs to.
    pub fn card_owner(&self, k: u64) -> Option<u64> {
        (k < self.linked_cards).then(|| self.perm_inv(k))
    }

    /// The customer whose email an unlinked card carries (half of them).
    pub fn unlinked_card_email_owner(&self, k: u64) -> Option<u64> {
        let j = k.checked_sub(self.linked_cards)?;
        if j % 2 == 1 {
            return None;
        }
        let slot = self.linked_cards + j / 2;
        (slot < self.customers).then(|| self.perm_inv(slot))
    }

    // ---- products --------------------------------------------------------

    pub fn product(&self, k: u64) -> Product {
        let x = h(self.seed, T_PRODUCT, k, 0);
        let category = weighted(CATEGORIES, unit(x));
        let (brands, nouns, lo, hi) = category_parts(category);
        let brand = brands[((x >> 20) % brands.len() as u64) as usize];
        let noun = nouns[((x >> 28) % nouns.len() as u64) as usize];
        let adj = ADJECTIVES[((x >> 36) % ADJECTIVES.len() as u64) as usize];
        let price_cents = lo + (unit(h(self.seed, T_PRODUCT, k, 1)) * (hi - lo) as f64) as i64;
        // Prices end in .99 or .49 as shops like them.
        let price_cents = (price_cents / 100) * 100 + if x & 1 == 0 { 99 } else { 49 };
        Product {
            index: k,
            sku: sku(k),
            name: format!("{brand} {adj} {noun}"),
            category,
            brand,
            price_cents,
        }
    }

    pub fn price_cents(&self, k: u64) -> i64 {
        self.product(k).price_cents
    }

    // ---- campaigns -------------------------------------------------------

    pub fn campaign(&self, c: u64) -> Campaign {
        let x = h(self.seed, T_CAMPAIGN, c, 0);
        let channel = ["email", "facebook", "google", "instagram"][(c % 4) as usize];
        let span = LIVE_DAYS - 50;
        let start =
            self.live_start_day() + (c * span as u64 / self.campaigns) as i64 + (x % 10) as i64;
        let days = 14 + ((x >> 8) % 32) as i64;
        let theme = THEMES[((x >> 16) % THEMES.len() as u64) as usize];
        let (y, m, _) = crate::rng::civil(start);
        Campaign {
            id: c + 1,
            name: format!("{theme} {} {y}", MONTHS[(m - 1) as usize]),
            channel,
            utm: format!("yc_{channel}_{:03}", c + 1),
            start_day: start,
            end_day: (start + days).min(as_of_day() - 1),
            budget_cents: (5_000 + (x >> 24) % 45_000) as i64 * 100,
        }
    }

    /// Campaigns running on a day (few: a linear scan is fine).
    pub fn campaigns_on(&self, day: i64) -> Vec<Campaign> {
        (0..self.campaigns)
            .map(|c| self.campaign(c))
            .filter(|c| c.start_day <= day && day <= c.end_day)
            .collect()
    }

    // ---- stores ----------------------------------------------------------

    pub fn store(&self, s: u64) -> Store {
        // The first stores go to the biggest cities, one each.
        let city = if (s as usize) < CITIES.len() {
            CITIES[s as usize]
        } else {
            city_for(unit(h(self.seed, T_STORE, s, 0)))
        };
        let opened =
            self.live_start_day() - 400 - (unit(h(self.seed, T_STORE, s, 1)) * 3000.0) as i64;
        Store {
            id: s + 1,
            name: format!("Yachay {} {}", city.0, s + 1),
            city,
            opened_day: opened,
        }
    }
}

fn mod_inverse(a: i128, n: i128) -> i128 {
    let (mut t, mut new_t, mut r, mut new_r) = (0i128, 1i128, n, a.rem_euclid(n));
    while new_r != 0 {
        let q = r / new_r;
        (t, new_t) = (new_t, t - q * new_t);
        (r, new_r) = (new_r, r - q * new_r);
    }
    t.rem_euclid(n)
}

pub fn sku(k: u64) -> String {
    format!("SKU-{:06}", k + 1)
}

pub fn card_id(k: u64) -> String {
    format!("YC{:08}", 10_000_000 + k)
}

/// Mixed case and stray spaces, as people and old systems type emails.
pub fn messy_email(email: &str, x: u64) -> String {
    match x % 20 {
        0 | 1 => email.to_uppercase(),
        2..=4 => {
            let mut out = String::with_capacity(email.len());
            let mut up = true;
            for ch in email.chars() {
                out.extend(if up {
                    ch.to_uppercase().collect::<Vec<_>>()
                } else {
                    vec![ch]
                });
                up = ch == '.' || ch == '@';
            }
            out
        }
        5 => format!(" {email}"),
        6 => format!("{email} "),
        _ => email.to_string(),
    }
}

pub struct Customer {
    pub id: u64,
    pub first: &'static str,
    pub last: &'static str,
    pub email: String,
    pub city: (&'static str, &'static str),
    pub segment: &'static str,
    pub card: Option<String>,
    pub created_secs: i64,
}

pub struct Product {
    pub index: u64,
    pub sku: String,
    pub name: String,
    pub category: &'static str,
    pub brand: &'static str,
    pub price_cents: i64,
}

#[derive(Debug, Clone)]
pub struct Campaign {
    pub id: u64,
    pub name: String,
    pub channel: &'static str,
    pub utm: String,
    pub start_day: i64,
    pub end_day: i64,
    pub budget_cents: i64,
}

pub struct Store {
    pub id: u64,
    pub name: String,
    pub city: (&'static str, &'static str),
    pub opened_day: i64,
}

/// (city, province) with weights roughly following population.
pub const CITIES: &[(&str, &str)] = &[
    ("Lima", "Lima"),
    ("Arequipa", "Arequipa"),
    ("Trujillo", "La Libertad"),
    ("Chiclayo", "Lambayeque"),
    ("Piura", "Piura"),
    ("Cusco", "Cusco"),
    ("Iquitos", "Loreto"),
    ("Huancayo", "Junin"),
    ("Tacna", "Tacna"),
    ("Puno", "Puno"),
    ("Ica", "Ica"),
    ("Ayacucho", "Ayacucho"),
];
const CITY_WEIGHTS: &[u32] = &[40, 9, 8, 6, 6, 5, 4, 4, 3, 3, 3, 2];

fn city_for(u: f64) -> (&'static str, &'static str) {
    let pairs: Vec<(usize, u32)> = CITY_WEIGHTS.iter().copied().enumerate().collect();
    CITIES[weighted(&pairs, u)]
}

pub const CATEGORIES: &[(&str, u32)] = &[
    ("apparel", 22),
    ("footwear", 10),
    ("electronics", 14),
    ("home", 16),
    ("beauty", 10),
    ("grocery", 12),
    ("toys", 8),
    ("sports", 8),
];

type Parts = (&'static [&'static str], &'static [&'static str], i64, i64);

fn category_parts(category: &str) -> Parts {
    match category {
        "apparel" => (
            &["Inti", "Alpaca Co", "Wayra", "Nazca"],
            &["T-Shirt", "Sweater", "Jacket", "Poncho", "Scarf", "Jeans"],
            900,
            12_000,
        ),
        "footwear" => (
            &["Chaski", "Andes Step", "Urpi"],
            &["Sneakers", "Boots", "Sandals", "Loafers"],
            2_500,
            16_000,
        ),
        "electronics" => (
            &["Quantum", "Kuntur Tech", "Voltia", "Nexo"],
            &[
                "Headphones",
                "Speaker",
                "Charger",
                "Smartwatch",
                "Tablet",
                "Camera",
            ],
            1_500,
            90_000,
        ),
        "home" => (
            &["Casa Killa", "Tambo", "Hogar+"],
            &["Lamp", "Blanket", "Mug Set", "Cushion", "Rug", "Pan"],
            700,
            25_000,
        ),
        "beauty" => (
            &["Flor de Sal", "Muña", "Qori"],
            &["Shampoo", "Face Cream", "Lip Balm", "Perfume", "Soap"],
            300,
            8_000,
        ),
        "grocery" => (
            &["Pachamama", "Sumaq", "Maras"],
            &["Quinoa", "Coffee", "Cacao", "Pink Salt", "Maca", "Tea"],
            150,
            3_000,
        ),
        "toys" => (
            &["Pukllay", "Llama Toys"],
            &["Puzzle", "Plush Llama", "Blocks", "Kite", "Board Game"],
            500,
            9_000,
        ),
        _ => (
            &["Apu Sport", "Condor"],
            &["Yoga Mat", "Backpack", "Water Bottle", "Tent", "Ball"],
            800,
            30_000,
        ),
    }
}

const ADJECTIVES: &[&str] = &[
    "Classic", "Eco", "Premium", "Lite", "Urban", "Andean", "Pro", "Soft", "Mini", "Max",
];
const THEMES: &[&str] = &[
    "Summer Sale",
    "Back to School",
    "Fiestas Patrias",
    "Cyber Days",
    "Black Friday",
    "Christmas",
    "New Year",
    "Mothers Day",
    "Winter Warmers",
    "Flash Deals",
];
const MONTHS: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DOMAINS: &[&str] = &[
    "gmail.com",
    "hotmail.com",
    "yahoo.com",
    "outlook.com",
    "pucp.edu.pe",
];
pub const FIRST_NAMES: &[&str] = &[
    "Ana", "Luis", "Carmen", "Jose", "Rosa", "Juan", "Maria", "Carlos", "Lucia", "Jorge", "Sofia",
    "Miguel", "Valeria", "Diego", "Camila", "Pedro", "Daniela", "Renzo", "Killa", "Inti", "Sumaq",
    "Amaru", "Yupanqui", "Nina", "Elena", "Raul", "Patricia", "Hugo", "Gabriela", "Fernando",
    "Paola", "Ricardo",
];
pub const LAST_NAMES: &[&str] = &[
    "Quispe",
    "Mamani",
    "Huaman",
    "Flores",
    "Rojas",
    "Garcia",
    "Torres",
    "Condori",
    "Chavez",
    "Ramos",
    "Vargas",
    "Mendoza",
    "Castillo",
    "Sanchez",
    "Diaz",
    "Gutierrez",
    "Ccori",
    "Apaza",
    "Ticona",
    "Paredes",
    "Salazar",
    "Vega",
    "Cruz",
    "O'Brien",
    "De la Cruz",
    "Nunez",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retailers_calendar() {
        let day = |y, m, d| days_from_civil(y, m, d);
        // Saturday 2026-06-06 against Monday 2026-06-08 (no paydays).
        assert!(day_weight(day(2026, 6, 6), true) > 1.5 * day_weight(day(2026, 6, 8), true));
        // The 15th (a Monday) against the 8th.
        assert_eq!(day_weight(day(2026, 6, 15), true), 1.3 * 0.85);
        // December against June, same weekday, no payday.
        assert!(day_weight(day(2025, 12, 10), true) > 1.5 * day_weight(day(2026, 6, 10), true));
        assert_eq!(
            day_weight(day(2025, 12, 10), false),
            day_weight(day(2026, 6, 10), false)
        );
        let max = (0..4000)
            .map(|i| day_weight(day(2025, 1, 1) + i, true))
            .fold(0.0, f64::max);
        assert!(
            max <= MAX_DAY_WEIGHT && max > 0.99 * MAX_DAY_WEIGHT,
            "{max}"
        );
    }

    #[test]
    fn cards_link_back_to_their_customers() {
        let spec = Spec::new(0.01, 7).unwrap();
        let mut linked = 0;
        for i in 0..spec.customers {
            if let Some(card) = spec.customer(i).card {
                linked += 1;
                let k: u64 = card[2..].parse::<u64>().unwrap() - 10_000_000;
                assert_eq!(spec.card_owner(k), Some(i));
            }
        }
        assert_eq!(linked, spec.linked_cards);
        // Email-matched unlinked cards point at customers without a card.
        for k in spec.linked_cards..spec.cards() {
            if let Some(owner) = spec.unlinked_card_email_owner(k) {
                assert!(spec.customer(owner).card.is_none());
            }
        }
    }

    #[test]
    fn bad_scales_are_refused() {
        for sf in [0.0, -1.0, f64::NAN, f64::INFINITY, 5000.0] {
            assert!(Spec::new(sf, 1).is_err(), "{sf}");
        }
        let one = Spec::new(1.0, 1).unwrap();
        assert_eq!(
            (one.customers, one.orders, one.stores),
            (100_000, 1_000_000, 50)
        );
        assert_eq!(one.locations() * one.products, 1_100_000);
    }

    #[test]
    fn messy_emails_normalise_back() {
        for x in 0..20 {
            let e = messy_email("ana.quispe1@gmail.com", x);
            assert_eq!(e.trim().to_lowercase(), "ana.quispe1@gmail.com");
        }
    }
}
