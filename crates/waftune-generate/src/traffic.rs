//! The traffic model: who the clients are and when they send which request.
//!
//! Every actor class is generated from its own ChaCha8 stream (`seed`, stream = class), so changing
//! one class's model does not reshuffle the others. Events are compact ([`Event`], 24 bytes); the
//! JSON is produced later by [`super::render`]. After all classes are generated the events are sorted
//! by time and two passes replay the web ACL's rate-based rules over them, so that rate blocks and
//! CAPTCHAs happen exactly when the simulated counters cross their limits.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::net::IpAddr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::catalog::{
    self, Agent, Country, Group, HOSTING, MANAGED_BLOCKS, MB_BAD_BOTS, MB_HOST_LOCALHOST,
    MB_NO_USER_AGENT, PRODUCTS, Probe, ProbeBlock, Style,
};
use super::ip::IpAllocator;
use super::{ActorClass, BlockTruth, GenerateOptions};

mod blocks;

/// Shares of the non-monitor budget per class; browsers get the rest (~62.5 %).
const SHARE_GOOGLEBOT: f64 = 0.11;
const SHARE_BINGBOT: f64 = 0.015;
const SHARE_FAKE_CRAWLER: f64 = 0.06;
const SHARE_SCRAPER: f64 = 0.10;
const SHARE_SCANNER: f64 = 0.03;
const SHARE_STUFFER: f64 = 0.06;

const MINUTE_MS: i64 = 60_000;

/// A stuffer's burst run: (shortest, longest) minutes and (slowest, fastest) requests per minute.
const STUFF_BURST: ((u32, u32), (f64, f64)) = ((3, 12), (20.0, 60.0));
/// A stuffer's low-and-slow run, likewise.
const STUFF_SLOW: ((u32, u32), (f64, f64)) = ((20, 90), (2.0, 6.0));
/// The shortest probe list an opportunistic scanner runs.
const SCANNER_LEAST_PROBES: u64 = 15;

/// Whether a class's budget still has room for one more offender address: at least `least`, the
/// least traffic the class's plan gives an address. A class's last address is cut where its budget
/// runs out; without this floor the cut could leave it a few requests that no longer behave like
/// its class (4 requests of a credential stuffer are a person mistyping a password), yet
/// `truth.json` would name it by its class. What is left goes to the shoppers.
fn room_for_one(produced: u64, budget: u64, least: u64) -> bool {
    produced.saturating_add(least) <= budget
}

/// One request, before rendering.
#[derive(Clone, Copy, Debug)]
pub(super) struct Event {
    pub ts: i64,
    pub client: u32,
    pub req: Req,
    pub verdict: Verdict,
}

/// What was requested. Rendering turns it into method, URI, args and headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Req {
    Home,
    Category { cat: u8, page: u16 },
    Product { id: u32 },
    Search { term: u8, page: u8 },
    Cart,
    Checkout,
    MyPage,
    Ranking,
    Sale,
    LoginPage,
    LoginPost { api: bool },
    Script { n: u8 },
    Style,
    Font,
    Favicon,
    Image { id: u32, n: u8 },
    ApiRecommend { id: u32 },
    ApiCartAdd { id: u32 },
    ApiReview { id: u32, big: bool },
    ApiSuggest { term: u8, len: u8 },
    ApiProducts { cat: u8, page: u16 },
    Robots,
    Sitemap { n: u8 },
    Health,
    Probe { idx: u16 },
}

/// The web ACL's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Allow,
    /// Blocked by a managed rule (index into [`MANAGED_BLOCKS`]).
    Managed(u8),
    /// Blocked by the ACL's `block-cms-probes` rule.
    Cms,
    /// Blocked by the per-IP rate-based rule.
    RateBlock,
    /// CAPTCHA from the login rate-based rule.
    Captcha,
    /// Blocked by waftune's rule: the address is in an enforced ledger entry.
    Ledger,
}

/// What Bot Control makes of a client (when the request reaches it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Bot {
    None,
    /// A verified bot of the search-engine category with this `bot:name:` label.
    VerifiedSearch(&'static str),
    /// `signal:non_browser_user_agent` only.
    NonBrowser,
    /// `bot:category:http_library` + `signal:non_browser_user_agent`.
    HttpLibrary,
    /// `signal:automated_browser`.
    Automated,
    /// `bot:category:monitoring` + this `bot:name:` label.
    Monitoring(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HostKind {
    /// The shop's hostname.
    Site,
    /// The load balancer's AWS DNS name (scanners walking IP space / DNS).
    AlbDns,
    /// `localhost` (matched by KnownBadInputs).
    Localhost,
}

pub(super) struct IpInfo {
    pub addr: IpAddr,
    pub text: String,
    pub country: &'static str,
    pub actor: u16,
    /// Whether the per-IP rate rule applies (its scope-down excludes verified bots).
    pub rate_scoped: bool,
    pub geo_country_label: String,
    pub geo_region_label: Option<String>,
    /// Its `clientAsn`, written only with `client_asn`.
    pub asn: Option<u32>,
}

pub(super) struct Client {
    pub ip: u32,
    pub agent: &'static Agent,
    pub lang: &'static str,
    pub bot: Bot,
    /// Bot Control `signal:known_bot_data_center`.
    pub dc_signal: bool,
    pub host: HostKind,
    pub cookies: bool,
    /// Whether the record carries ja3/ja4 fingerprints.
    pub tls: bool,
    /// Stable per-client randomness (cookie values).
    pub seed: u64,
}

pub(super) struct ActorPlan {
    pub class: ActorClass,
    pub name: String,
    pub note: String,
}

/// Per-actor measurements taken after the rate passes.
#[derive(Default, Clone)]
pub(super) struct ActorStats {
    pub requests: u64,
    pub ips: Vec<IpAddr>,
    pub peak_ip_minute: u32,
    pub blocked: u64,
    pub rate_blocked: u64,
    pub captcha: u64,
}

pub(super) struct World {
    pub end_ms: i64,
    pub ips: Vec<IpInfo>,
    pub clients: Vec<Client>,
    pub actors: Vec<ActorPlan>,
    pub stats: Vec<ActorStats>,
    /// Sorted by timestamp.
    pub events: Vec<Event>,
    pub probes: Vec<Probe>,
    /// What the enforced ledger did, and the rule that answers it (name, response code).
    pub blocks: Option<BlockTruth>,
}

/// The ChaCha8 stream for one purpose.
pub(super) fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

mod stream {
    pub const MONITOR: u64 = 1;
    pub const VERIFIED: u64 = 2;
    pub const FAKE: u64 = 3;
    pub const SCRAPER: u64 = 4;
    pub const SCANNER: u64 = 5;
    pub const STUFFER: u64 = 6;
    pub const BROWSER: u64 = 7;
    pub const BLOCKS: u64 = 8;
}

fn normal<R: Rng>(rng: &mut R) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn lognormal<R: Rng>(rng: &mut R, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

/// Stochastic rounding: E[result] = x.
fn sround<R: Rng>(rng: &mut R, x: f64) -> u64 {
    let f = x.floor();
    f as u64 + u64::from(rng.random::<f64>() < x - f)
}

fn weighted<'a, T, R: Rng>(rng: &mut R, items: &'a [(T, u32)]) -> &'a T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total);
    for (item, w) in items {
        if x < *w {
            return item;
        }
        x -= w;
    }
    &items[items.len() - 1].0
}

fn weighted_copy<T: Copy, R: Rng>(rng: &mut R, items: &[(T, u32)]) -> T {
    *weighted(rng, items)
}

fn pick_copy<T: Copy, R: Rng>(rng: &mut R, items: &[T]) -> T {
    *pick(rng, items)
}

fn pick<'a, T, R: Rng>(rng: &mut R, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Shoppers' activity by local hour (an online shop in Japan: quiet at 3-5, peaks at lunch and 20-22).
const HOURLY: [f64; 24] = [
    0.55, 0.35, 0.22, 0.15, 0.12, 0.15, 0.30, 0.55, 0.75, 0.85, 0.90, 0.95, 1.10, 1.00, 0.90, 0.90,
    0.90, 0.95, 1.00, 1.10, 1.25, 1.35, 1.25, 0.90,
];

fn diurnal(local_minute_of_day: f64) -> f64 {
    let h = local_minute_of_day / 60.0;
    let i = (h.floor() as usize) % 24;
    let f = h - h.floor();
    HOURLY[i] * (1.0 - f) + HOURLY[(i + 1) % 24] * f
}

/// Inverse-CDF sampling of a minute index from per-minute weights.
struct MinuteCdf {
    cum: Vec<f64>,
}

impl MinuteCdf {
    fn new(weights: impl Iterator<Item = f64>) -> Self {
        let mut acc = 0.0;
        let cum = weights
            .map(|w| {
                acc += w;
                acc
            })
            .collect();
        MinuteCdf { cum }
    }

    fn sample<R: Rng>(&self, rng: &mut R) -> usize {
        let total = *self.cum.last().unwrap_or(&0.0);
        let x = rng.random::<f64>() * total;
        self.cum
            .partition_point(|&c| c <= x)
            .min(self.cum.len() - 1)
    }
}

fn hhmm(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%H:%MZ").to_string())
        .unwrap_or_default()
}

/// A span of minutes `[start, start+len)` placed at random, scaled to the run's duration.
fn span<R: Rng>(rng: &mut R, minutes: u32, lo: u32, hi: u32, within: (u32, u32)) -> (u32, u32) {
    let scale = (f64::from(minutes) / 1440.0).min(1.0);
    let want = f64::from(rng.random_range(lo..=hi)) * scale.max(0.05);
    let room = within.1.saturating_sub(within.0).max(1);
    let len = (want.round() as u32).clamp(3.min(room), room);
    let start = within.0 + rng.random_range(0..=room - len);
    (start, len)
}

struct Builder<'o> {
    opts: &'o GenerateOptions,
    start_ms: i64,
    end_ms: i64,
    minutes: u32,
    home: &'static Country,
    alloc: IpAllocator,
    ips: Vec<IpInfo>,
    clients: Vec<Client>,
    actors: Vec<ActorPlan>,
    events: Vec<Event>,
    probes: Vec<Probe>,
}

struct ClientSpec {
    agent: &'static Agent,
    lang: &'static str,
    bot: Bot,
    dc_signal: bool,
    host: HostKind,
    cookies: bool,
    tls: bool,
}

impl ClientSpec {
    fn tool(agent: &'static Agent, bot: Bot) -> Self {
        ClientSpec {
            agent,
            lang: "",
            bot,
            dc_signal: false,
            host: HostKind::Site,
            cookies: false,
            tls: true,
        }
    }
}

impl Builder<'_> {
    fn add_actor(
        &mut self,
        class: ActorClass,
        name: impl Into<String>,
        note: impl Into<String>,
    ) -> u16 {
        self.actors.push(ActorPlan {
            class,
            name: name.into(),
            note: note.into(),
        });
        (self.actors.len() - 1) as u16
    }

    fn add_ip(
        &mut self,
        addr: IpAddr,
        country: &'static str,
        region: Option<&str>,
        actor: u16,
    ) -> u32 {
        self.ips.push(IpInfo {
            addr,
            text: addr.to_string(),
            country,
            actor,
            rate_scoped: true,
            geo_country_label: format!("awswaf:clientip:geo:country:{country}"),
            geo_region_label: region.map(|r| format!("awswaf:clientip:geo:region:{r}")),
            asn: self.opts.client_asn.then(|| catalog::asn_of(addr)),
        });
        (self.ips.len() - 1) as u32
    }

    fn add_client<R: Rng>(&mut self, rng: &mut R, ip: u32, spec: ClientSpec) -> u32 {
        self.clients.push(Client {
            ip,
            agent: spec.agent,
            lang: spec.lang,
            bot: spec.bot,
            dc_signal: spec.dc_signal,
            host: spec.host,
            cookies: spec.cookies,
            tls: spec.tls,
            seed: rng.random(),
        });
        (self.clients.len() - 1) as u32
    }

    fn push(&mut self, ts: i64, client: u32, req: Req, verdict: Verdict) -> bool {
        if ts < self.start_ms || ts >= self.end_ms {
            return false;
        }
        self.events.push(Event {
            ts,
            client,
            req,
            verdict,
        });
        true
    }

    fn minute_ms(&self, m: u32) -> i64 {
        self.start_ms + i64::from(m) * MINUTE_MS
    }

    fn local_minute(&self, m: u32, offset_min: i32) -> f64 {
        let abs = self.start_ms.div_euclid(MINUTE_MS) + i64::from(m) + i64::from(offset_min);
        abs.rem_euclid(1440) as f64
    }

    fn hosting_ip<R: Rng>(&mut self, rng: &mut R, actor: u16) -> u32 {
        let h = pick(rng, HOSTING);
        let addr = self.alloc.v4_in(rng, h.cidr);
        self.add_ip(IpAddr::V4(addr), h.country, h.region, actor)
    }

    fn consumer_ip<R: Rng>(
        &mut self,
        rng: &mut R,
        c: &'static Country,
        v6: bool,
        actor: u16,
    ) -> u32 {
        let region = (!c.regions.is_empty()).then(|| *weighted(rng, c.regions));
        let addr = if v6 && !c.v6.is_empty() {
            {
                let net = *pick(rng, c.v6);
                IpAddr::V6(self.alloc.v6_in(rng, net))
            }
        } else {
            {
                let net = *weighted(rng, c.v4);
                IpAddr::V4(self.alloc.v4_in(rng, net))
            }
        };
        self.add_ip(addr, c.code, region, actor)
    }

    // ----------------------------------------------------------------------------------------------
    // monitors

    fn monitors(&mut self, n: usize) -> u64 {
        let mut rng = rng_for(self.opts.seed, stream::MONITOR);
        let mut total = 0;
        for mon in catalog::MONITORS.iter().take(n) {
            let actor = self.add_actor(
                ActorClass::Monitor,
                mon.name,
                format!(
                    "uptime monitor `{}`: GET /health exactly once per minute",
                    mon.agent.ua
                ),
            );
            let addr = self.alloc.v4_in(&mut rng, mon.net);
            let ip = self.add_ip(IpAddr::V4(addr), mon.country, None, actor);
            let client = self.add_client(
                &mut rng,
                ip,
                ClientSpec::tool(&mon.agent, Bot::Monitoring(mon.label)),
            );
            let offset = rng.random_range(0..59_000);
            for m in 0..self.minutes {
                let ts = self.minute_ms(m) + offset + rng.random_range(0..400);
                total += u64::from(self.push(ts, client, Req::Health, Verdict::Allow));
            }
        }
        total
    }

    // ----------------------------------------------------------------------------------------------
    // crawlers

    fn crawl_req<R: Rng>(rng: &mut R) -> Req {
        let x: f64 = rng.random();
        if x < 0.70 {
            Req::Product {
                id: rng.random_range(1..=PRODUCTS),
            }
        } else if x < 0.86 {
            Req::Category {
                cat: rng.random_range(0..catalog::CATEGORIES.len() as u8),
                page: rng.random_range(1..=40),
            }
        } else if x < 0.93 {
            Req::Image {
                id: rng.random_range(1..=PRODUCTS),
                n: rng.random_range(1..=4),
            }
        } else if x < 0.955 {
            Req::Ranking
        } else if x < 0.975 {
            Req::Sale
        } else if x < 0.985 {
            Req::Home
        } else if x < 0.997 {
            Req::Sitemap {
                n: rng.random_range(1..=12),
            }
        } else {
            Req::Robots
        }
    }

    fn verified_crawlers(&mut self, rest: f64) {
        let mut rng = rng_for(self.opts.seed, stream::VERIFIED);
        let minutes = self.minutes;

        // Googlebot: steady crawl with a few extreme episodes.
        let actor = self.add_actor(ActorClass::VerifiedCrawler, "googlebot", "");
        let mut ips = Vec::new();
        for i in 0..10 {
            let third = catalog::GOOGLEBOT_NET_24S[i % catalog::GOOGLEBOT_NET_24S.len()];
            let addr = self.alloc.v4_in(&mut rng, &format!("66.249.{third}.0/24"));
            let ip = self.add_ip(IpAddr::V4(addr), "US", Some("US-CA"), actor);
            self.ips[ip as usize].rate_scoped = false;
            let bot = Bot::VerifiedSearch("awswaf:managed:aws:bot-control:bot:name:googlebot");
            let smart = self.add_client(
                &mut rng,
                ip,
                ClientSpec::tool(&catalog::GOOGLEBOT_SMARTPHONE, bot),
            );
            let desk = self.add_client(
                &mut rng,
                ip,
                ClientSpec::tool(&catalog::GOOGLEBOT_DESKTOP, bot),
            );
            ips.push((smart, desk, 1.0 / f64::powf(i as f64 + 1.0, 1.1)));
        }
        let wsum: f64 = ips.iter().map(|x| x.2).sum();
        let top_share = ips[0].2 / wsum;

        let n_episodes = if minutes >= 360 {
            rng.random_range(2..=3)
        } else {
            1
        };
        let mut shape: Vec<f64> = (0..minutes)
            .map(|m| 1.0 + 0.2 * (self.local_minute(m, 0) / 1440.0 * std::f64::consts::TAU).sin())
            .collect();
        let seg = minutes / n_episodes;
        let mut episodes = Vec::new();
        for e in 0..n_episodes {
            let within = (
                e * seg,
                if e + 1 == n_episodes {
                    minutes
                } else {
                    (e + 1) * seg
                },
            );
            let room = within.1 - within.0;
            let len = rng
                .random_range(15..=30u32)
                .min((minutes / 4).max(3))
                .min(room);
            let start = within.0 + rng.random_range(0..=room - len);
            let mult = rng.random_range(14.0..27.0);
            for m in start..start + len {
                shape[m as usize] = mult * rng.random_range(0.9..1.1);
            }
            episodes.push((start, len, mult));
        }
        let budget = SHARE_GOOGLEBOT * rest;
        let unit = budget / shape.iter().sum::<f64>();
        for (m, s) in shape.iter().enumerate() {
            let n = sround(&mut rng, unit * s);
            for _ in 0..n {
                let ts = self.minute_ms(m as u32) + rng.random_range(0..MINUTE_MS);
                let mut x = rng.random::<f64>() * wsum;
                let mut chosen = ips[ips.len() - 1];
                for c in &ips {
                    if x < c.2 {
                        chosen = *c;
                        break;
                    }
                    x -= c.2;
                }
                let client = if rng.random_bool(0.8) {
                    chosen.0
                } else {
                    chosen.1
                };
                let req = Self::crawl_req(&mut rng);
                self.push(ts, client, req, Verdict::Allow);
            }
        }
        let mut note = format!(
            "verified Googlebot (66.249.64.0/19, Bot Control bot:verified); steady ~{:.0} req/min; ",
            unit
        );
        let _ = write!(note, "{} extreme episode(s):", episodes.len());
        for (start, len, mult) in &episodes {
            let _ = write!(
                note,
                " {}-{} at ~{:.0} req/min;",
                hhmm(self.minute_ms(*start)),
                hhmm(self.minute_ms(start + len)),
                unit * mult
            );
        }
        let _ = write!(note, " busiest IP carries ~{:.0}% of it", top_share * 100.0);
        self.actors[actor as usize].note = note;

        // Bingbot: moderate, steady.
        let actor = self.add_actor(ActorClass::VerifiedCrawler, "bingbot", "");
        let mut clients = Vec::new();
        for _ in 0..4 {
            let addr = self.alloc.v4_in(&mut rng, catalog::BINGBOT_NET);
            let ip = self.add_ip(IpAddr::V4(addr), "US", Some("US-WA"), actor);
            self.ips[ip as usize].rate_scoped = false;
            clients.push(self.add_client(
                &mut rng,
                ip,
                ClientSpec::tool(
                    &catalog::BINGBOT,
                    Bot::VerifiedSearch("awswaf:managed:aws:bot-control:bot:name:bingbot"),
                ),
            ));
        }
        let shape: Vec<f64> = (0..minutes)
            .map(|m| 1.0 + 0.3 * (self.local_minute(m, 180) / 1440.0 * std::f64::consts::TAU).cos())
            .collect();
        let unit = SHARE_BINGBOT * rest / shape.iter().sum::<f64>();
        for (m, s) in shape.iter().enumerate() {
            for _ in 0..sround(&mut rng, unit * s) {
                let ts = self.minute_ms(m as u32) + rng.random_range(0..MINUTE_MS);
                let client = *pick(&mut rng, &clients);
                let req = Self::crawl_req(&mut rng);
                self.push(ts, client, req, Verdict::Allow);
            }
        }
        self.actors[actor as usize].note = format!(
            "verified Bingbot (157.55.39.0/24, bot:verified), steady ~{unit:.0} req/min over {} IPs",
            clients.len()
        );
    }

    fn fake_crawlers(&mut self, rest: f64) {
        let mut rng = rng_for(self.opts.seed, stream::FAKE);
        let minutes = self.minutes;
        let google = self.add_actor(ActorClass::FakeCrawler, "fake-googlebot", "");
        let bing = self.add_actor(ActorClass::FakeCrawler, "fake-bingbot", "");
        // (client, per-minute shape)
        let mut crawlers: Vec<(u32, Vec<f64>)> = Vec::new();
        for i in 0..6 {
            let (actor, agent) = match i {
                0 | 1 => (google, &catalog::FAKE_GOOGLEBOT),
                2 | 3 => (google, &catalog::FAKE_GOOGLEBOT_SMARTPHONE),
                _ => (bing, &catalog::FAKE_BINGBOT),
            };
            let ip = self.hosting_ip(&mut rng, actor);
            let bot = if i % 2 == 0 {
                Bot::NonBrowser
            } else {
                Bot::None
            };
            let client = self.add_client(&mut rng, ip, ClientSpec::tool(agent, bot));
            let mut shape = vec![0.0; minutes as usize];
            let windows = if minutes >= 360 {
                rng.random_range(1..=2)
            } else {
                1
            };
            for _ in 0..windows {
                let (start, len) = span(&mut rng, minutes, 30, 90, (0, minutes));
                let level = rng.random_range(1.0..3.0);
                for m in start..start + len {
                    shape[m as usize] += level * rng.random_range(0.7..1.3);
                }
            }
            crawlers.push((client, shape));
        }
        let total: f64 = crawlers.iter().map(|c| c.1.iter().sum::<f64>()).sum();
        let unit = SHARE_FAKE_CRAWLER * rest / total;
        for (client, shape) in &crawlers {
            for (m, s) in shape.iter().enumerate() {
                for _ in 0..sround(&mut rng, unit * s) {
                    let ts = self.minute_ms(m as u32) + rng.random_range(0..MINUTE_MS);
                    let x: f64 = rng.random();
                    let req = if x < 0.6 {
                        Req::Product {
                            id: rng.random_range(1..=PRODUCTS),
                        }
                    } else if x < 0.85 {
                        Req::Category {
                            cat: rng.random_range(0..catalog::CATEGORIES.len() as u8),
                            page: rng.random_range(1..=60),
                        }
                    } else if x < 0.95 {
                        Req::Search {
                            term: rng.random_range(0..catalog::SEARCH_TERMS.len() as u8),
                            page: rng.random_range(1..=10),
                        }
                    } else {
                        Req::Image {
                            id: rng.random_range(1..=PRODUCTS),
                            n: 1,
                        }
                    };
                    self.push(ts, *client, req, Verdict::Allow);
                }
            }
        }
        let rate = |level: f64| unit * level;
        self.actors[google as usize].note = format!(
            "Googlebot user agents from hosting ranges (not 66.249.64.0/19), no bot:verified label; \
             active in 1-2 windows per IP at ~{:.0}-{:.0} req/min",
            rate(1.0),
            rate(3.0)
        );
        self.actors[bing as usize].note = format!(
            "Bingbot user agent from hosting ranges (not 157.55.39.0/24), no bot:verified label; \
             ~{:.0}-{:.0} req/min while active",
            rate(1.0),
            rate(3.0)
        );
    }

    // ----------------------------------------------------------------------------------------------
    // scrapers

    fn scrapers(&mut self, rest: f64) {
        let mut rng = rng_for(self.opts.seed, stream::SCRAPER);
        let minutes = self.minutes;
        let kinds: [(&str, &'static Agent, Bot, &str); 3] = [
            (
                "scraper-python-requests",
                &catalog::PYTHON_REQUESTS,
                Bot::HttpLibrary,
                "walks the listing API page by page",
            ),
            (
                "scraper-curl",
                &catalog::CURL,
                Bot::HttpLibrary,
                "fetches product pages by sequential id",
            ),
            (
                "scraper-headless-chrome",
                &catalog::HEADLESS_CHROME,
                Bot::Automated,
                "renders product pages with images and the recommendation API",
            ),
        ];
        let mut plans = Vec::new();
        for (name, agent, bot, what) in kinds {
            let actor = self.add_actor(ActorClass::Scraper, name, "");
            let ip = self.hosting_ip(&mut rng, actor);
            let mut spec = ClientSpec::tool(agent, bot);
            spec.dc_signal = true;
            spec.cookies = agent.style == Style::Chromium;
            spec.lang = if spec.cookies { "en-US,en;q=0.9" } else { "" };
            let client = self.add_client(&mut rng, ip, spec);
            let mut shape = vec![0.0; minutes as usize];
            let mut sessions = Vec::new();
            let n = if minutes >= 360 {
                rng.random_range(1..=2)
            } else {
                1
            };
            for _ in 0..n {
                let (start, len) = span(&mut rng, minutes, 30, 75, (0, minutes));
                let level = rng.random_range(3.0..7.0);
                for m in start..start + len {
                    shape[m as usize] += level * rng.random_range(0.85..1.15);
                }
                // Bursts where the scraper opens more connections: these trip the rate rule.
                let mut peak: f64 = level;
                for _ in 0..rng.random_range(1..=3) {
                    let burst = rng.random_range(4..=10u32).min(len);
                    let at = start + rng.random_range(0..=len - burst);
                    let factor = rng.random_range(1.6..2.4);
                    for m in at..at + burst {
                        shape[m as usize] *= factor;
                    }
                    peak = peak.max(level * factor);
                }
                sessions.push((start, len, level, peak));
            }
            plans.push((actor, client, shape, sessions, what));
        }
        let total: f64 = plans.iter().map(|p| p.2.iter().sum::<f64>()).sum();
        let unit = SHARE_SCRAPER * rest / total;
        for (i, (actor, client, shape, sessions, what)) in plans.into_iter().enumerate() {
            let mut next_id: u32 = rng.random_range(1..PRODUCTS / 2);
            let mut cat: u8 = rng.random_range(0..catalog::CATEGORIES.len() as u8);
            let mut page: u16 = 1;
            for (m, s) in shape.iter().enumerate() {
                let n = sround(&mut rng, unit * s);
                let mut ts: Vec<i64> = (0..n).map(|_| rng.random_range(0..MINUTE_MS)).collect();
                ts.sort_unstable();
                for t in ts {
                    let ts = self.minute_ms(m as u32) + t;
                    let req = match i {
                        0 => {
                            if rng.random_bool(0.7) {
                                page += 1;
                                if page > 120 {
                                    page = 1;
                                    cat = (cat + 1) % catalog::CATEGORIES.len() as u8;
                                }
                                Req::ApiProducts { cat, page }
                            } else {
                                next_id = next_id % PRODUCTS + 1;
                                Req::Product { id: next_id }
                            }
                        }
                        1 => {
                            next_id = next_id % PRODUCTS + 1;
                            Req::Product { id: next_id }
                        }
                        _ => match rng.random_range(0..4) {
                            0 => {
                                next_id = next_id % PRODUCTS + rng.random_range(1..4);
                                Req::Product { id: next_id }
                            }
                            1 | 2 => Req::Image {
                                id: next_id,
                                n: rng.random_range(1..=3),
                            },
                            _ => Req::ApiRecommend { id: next_id },
                        },
                    };
                    self.push(ts, client, req, Verdict::Allow);
                }
            }
            let mut note = format!("{}; datacenter IP;", what);
            for (start, len, level, peak) in sessions {
                let _ = write!(
                    note,
                    " active {}-{} at ~{:.0} req/min with bursts to ~{:.0};",
                    hhmm(self.minute_ms(start)),
                    hhmm(self.minute_ms(start + len)),
                    unit * level,
                    unit * peak
                );
            }
            self.actors[actor as usize].note = note;
        }
    }

    // ----------------------------------------------------------------------------------------------
    // path scanners

    /// The verdict the web ACL gives a probe from this client (rule order: CRS, KBI, custom).
    fn probe_verdict(probe: &Probe, agent: &Agent, host: HostKind) -> Verdict {
        let managed_in = |g: Group| match probe.block {
            ProbeBlock::Managed(i) if MANAGED_BLOCKS[i as usize].group == g => Some(i),
            _ => None,
        };
        if agent.style == Style::NoAgent {
            return Verdict::Managed(MB_NO_USER_AGENT);
        }
        if agent.ua.contains("Nikto") {
            return Verdict::Managed(MB_BAD_BOTS);
        }
        if let Some(i) = managed_in(Group::Common) {
            return Verdict::Managed(i);
        }
        if let Some(i) = managed_in(Group::KnownBadInputs) {
            return Verdict::Managed(i);
        }
        if host == HostKind::Localhost {
            return Verdict::Managed(MB_HOST_LOCALHOST);
        }
        if probe.block == ProbeBlock::Cms {
            return Verdict::Cms;
        }
        Verdict::Allow
    }

    fn scanner_bot(agent: &Agent) -> Bot {
        match agent.style {
            Style::Library => Bot::HttpLibrary,
            Style::Minimal if !agent.ua.starts_with("Mozilla/5.0 (") => Bot::NonBrowser,
            _ => Bot::None,
        }
    }

    /// Sends `count` probes from `client` starting at `t0`, at `rate` per minute; returns how many landed.
    fn probe_burst<R: Rng>(
        &mut self,
        rng: &mut R,
        client: u32,
        list: &[u16],
        t0: i64,
        rate: f64,
        count: u64,
    ) -> u64 {
        let agent = self.clients[client as usize].agent;
        let host = self.clients[client as usize].host;
        let gap = MINUTE_MS as f64 / rate;
        let mut t = t0 as f64;
        let mut landed = 0;
        for k in 0..count {
            let idx = list[(k as usize) % list.len()];
            let verdict = Self::probe_verdict(&self.probes[idx as usize], agent, host);
            landed += u64::from(self.push(t as i64, client, Req::Probe { idx }, verdict));
            t += gap * rng.random_range(0.3..1.7);
        }
        landed
    }

    fn scanners(&mut self, rest: f64) {
        let mut rng = rng_for(self.opts.seed, stream::SCANNER);
        let minutes = self.minutes;
        let budget = (SHARE_SCANNER * rest).round() as u64;
        let n_probes = self.probes.len() as u16;
        let mut produced = 0u64;

        // A cluster of neighbours in one /24 running the same list at about the same time.
        let cluster_budget = budget * 15 / 100;
        let n = (cluster_budget / 60).clamp(1, 8);
        let actor = self.add_actor(
            ActorClass::PathScanner,
            format!("scanner-cluster-{}", catalog::SCANNER_CLUSTER_NET),
            "",
        );
        let agent: &'static Agent = weighted(&mut rng, &catalog::SCANNER_AGENTS[..5]);
        let mut list: Vec<u16> = (0..n_probes).collect();
        shuffle(&mut rng, &mut list);
        let t0 = self.minute_ms(rng.random_range(0..minutes.saturating_sub(20).max(1)));
        let rate = rng.random_range(20.0..60.0);
        for _ in 0..n {
            let addr = self.alloc.v4_in(&mut rng, catalog::SCANNER_CLUSTER_NET);
            let ip = self.add_ip(
                IpAddr::V4(addr),
                catalog::SCANNER_CLUSTER_COUNTRY,
                Some("NL-NH"),
                actor,
            );
            let mut spec = ClientSpec::tool(agent, Self::scanner_bot(agent));
            spec.dc_signal = true;
            spec.host = HostKind::AlbDns;
            let client = self.add_client(&mut rng, ip, spec);
            let start = t0 + rng.random_range(0..10 * MINUTE_MS);
            produced += self.probe_burst(&mut rng, client, &list, start, rate, cluster_budget / n);
        }
        self.actors[actor as usize].note = format!(
            "{n} neighbouring addresses in one /24 running the same {}-path list at ~{rate:.0} req/min each, \
             starting within 10 minutes of {}; UA `{}`",
            list.len(),
            hhmm(t0),
            agent.ua
        );

        // Opportunistic scanners from everywhere.
        let actor = self.add_actor(ActorClass::PathScanner, "scanners-opportunistic", "");
        let mut ips = 0;
        let mut attempts = 0;
        let least = SCANNER_LEAST_PROBES.min(u64::from(n_probes));
        while room_for_one(produced, budget, least) && attempts < 100_000 {
            attempts += 1;
            let agent: &'static Agent = weighted(&mut rng, catalog::SCANNER_AGENTS);
            let ip = if rng.random_bool(0.6) {
                self.hosting_ip(&mut rng, actor)
            } else {
                let code = *weighted(&mut rng, catalog::PROXY_COUNTRIES);
                let c = catalog::country(code).expect("proxy country in table");
                self.consumer_ip(&mut rng, c, false, actor)
            };
            ips += 1;
            let mut spec = ClientSpec::tool(agent, Self::scanner_bot(agent));
            spec.host = match rng.random_range(0..100) {
                0..55 => HostKind::Site,
                55..95 => HostKind::AlbDns,
                _ => HostKind::Localhost,
            };
            spec.tls = rng.random_bool(0.7);
            let client = self.add_client(&mut rng, ip, spec);
            let mut list: Vec<u16> = (0..n_probes).collect();
            shuffle(&mut rng, &mut list);
            let lo = SCANNER_LEAST_PROBES as f64;
            let k = (lo * f64::powf(250.0 / lo, rng.random::<f64>())) as usize;
            list.truncate(k.max(1));
            let visits = if rng.random_bool(0.2) {
                rng.random_range(2..=3)
            } else {
                1
            };
            for _ in 0..visits {
                let count = (list.len() as u64).min(budget - produced);
                if count == 0 {
                    break;
                }
                let t0 = self.start_ms + rng.random_range(0..i64::from(minutes) * MINUTE_MS);
                let rate = rng.random_range(10.0..120.0);
                produced += self.probe_burst(&mut rng, client, &list, t0, rate, count);
            }
        }
        self.actors[actor as usize].note = format!(
            "{ips} scanners (hosting and compromised consumer hosts) probing for secrets and admin panels \
             in short bursts at 10-120 req/min, some revisiting later; a share is blocked by \
             CommonRuleSet / KnownBadInputs / block-cms-probes, the rest reaches the origin (404)"
        );
    }

    // ----------------------------------------------------------------------------------------------
    // credential stuffers

    fn stuffers(&mut self, rest: f64) {
        let mut rng = rng_for(self.opts.seed, stream::STUFFER);
        let minutes = self.minutes;
        let budget = (SHARE_STUFFER * rest).round() as u64;
        let burst_budget = budget * 60 / 100;
        let browsers: Vec<(&'static Agent, u32)> =
            catalog::BROWSERS.iter().map(|(a, _, w)| (a, *w)).collect();

        for (slow, name, share) in [
            (false, "stuffing-bursts", burst_budget),
            (true, "stuffing-low-and-slow", budget - burst_budget),
        ] {
            let ((len_lo, len_hi), (rate_lo, rate_hi)) =
                if slow { STUFF_SLOW } else { STUFF_BURST };
            // The shortest run at the slowest rate (a run never outlasts the whole time range).
            let least = (rate_lo * f64::from(len_lo.min(minutes))) as u64;
            let actor = self.add_actor(ActorClass::CredentialStuffer, name, "");
            let mut produced = 0u64;
            let mut ips = 0;
            let mut attempts = 0;
            while room_for_one(produced, share, least) && attempts < 100_000 {
                attempts += 1;
                let dc = rng.random_bool(0.3);
                let (ip, country) = if dc {
                    let ip = self.hosting_ip(&mut rng, actor);
                    (ip, catalog::country("US").expect("US in table"))
                } else {
                    let code = *weighted(&mut rng, catalog::PROXY_COUNTRIES);
                    let c = catalog::country(code).expect("proxy country in table");
                    (self.consumer_ip(&mut rng, c, false, actor), c)
                };
                ips += 1;
                let spec = ClientSpec {
                    agent: weighted_copy(&mut rng, &browsers),
                    lang: pick_copy(&mut rng, country.langs),
                    bot: Bot::None,
                    dc_signal: dc,
                    host: HostKind::Site,
                    cookies: false,
                    tls: true,
                };
                let client = self.add_client(&mut rng, ip, spec);
                let api_share = if slow { 0.8 } else { 0.3 };
                let runs = if !slow && minutes >= 120 && rng.random_bool(0.4) {
                    2
                } else {
                    1
                };
                for _ in 0..runs {
                    let (start, len) =
                        span(&mut rng, minutes.max(1440), len_lo, len_hi, (0, minutes));
                    let rate = rng.random_range(rate_lo..rate_hi);
                    let gap = MINUTE_MS as f64 / rate;
                    let mut t = self.minute_ms(start) as f64 + rng.random_range(0.0..gap);
                    let end = self.minute_ms(start + len) as f64;
                    while t < end && produced < share {
                        let req = if rng.random_bool(0.1) {
                            Req::LoginPage
                        } else {
                            Req::LoginPost {
                                api: rng.random_bool(api_share),
                            }
                        };
                        produced += u64::from(self.push(t as i64, client, req, Verdict::Allow));
                        t += gap * rng.random_range(0.5..1.5);
                    }
                }
            }
            self.actors[actor as usize].note = if slow {
                format!(
                    "{ips} residential-proxy / hosting IPs trying logins low and slow (2-6 req/min for 20-90 min); \
                     below any sane per-IP threshold"
                )
            } else {
                format!(
                    "{ips} residential-proxy / hosting IPs POSTing to /login and /api/login in bursts of 3-12 min \
                     at 20-60 req/min; login-rate-captcha answers with CAPTCHA above {} per 5 min",
                    catalog::LOGIN_LIMIT
                )
            };
        }
    }

    // ----------------------------------------------------------------------------------------------
    // browsers

    fn browsers(&mut self, budget: u64) {
        let mut rng = rng_for(self.opts.seed, stream::BROWSER);
        let minutes = self.minutes;
        let home = self.home;
        let home_actor = self.add_actor(
            ActorClass::Browser,
            format!("browsers-{}", home.code.to_lowercase()),
            "",
        );
        let abroad_actor = self.add_actor(ActorClass::Browser, "browsers-overseas", "");
        let overseas: Vec<(&'static Country, u32)> = catalog::OVERSEAS_SHOPPERS
            .iter()
            .filter(|(c, _)| *c != home.code)
            .filter_map(|(c, w)| catalog::country(c).map(|c| (c, *w)))
            .collect();
        let home_agents: Vec<(&'static Agent, u32)> =
            catalog::BROWSERS.iter().map(|(a, w, _)| (a, *w)).collect();
        let abroad_agents: Vec<(&'static Agent, u32)> =
            catalog::BROWSERS.iter().map(|(a, _, w)| (a, *w)).collect();
        let mut cdfs: BTreeMap<i32, MinuteCdf> = BTreeMap::new();
        // NAT addresses that can take more users: (ip, users left).
        let mut nat: Vec<(u32, u32)> = Vec::new();
        let mut produced = 0u64;
        // Per actor (home, abroad): users, users on IPv6, NAT addresses.
        let mut users = [0u64; 2];
        let mut v6_users = [0u64; 2];
        let mut nat_ips = [0u64; 2];
        let mut session = Vec::new();

        while produced < budget {
            let abroad = rng.random_bool(0.12);
            let side = usize::from(abroad);
            users[side] += 1;
            let country = if abroad {
                *weighted(&mut rng, &overseas)
            } else {
                home
            };
            let actor = if abroad { abroad_actor } else { home_actor };
            let v6 = rng.random_bool(0.10) && !country.v6.is_empty();
            let ip = if v6 {
                v6_users[side] += 1;
                self.consumer_ip(&mut rng, country, true, actor)
            } else if let Some(slot) = (!nat.is_empty() && rng.random_bool(0.15))
                .then(|| rng.random_range(0..nat.len()))
                .filter(|&i| self.ips[nat[i].0 as usize].country == country.code)
            {
                let ip = nat[slot].0;
                nat[slot].1 -= 1;
                if nat[slot].1 == 0 {
                    nat.swap_remove(slot);
                }
                ip
            } else {
                let ip = self.consumer_ip(&mut rng, country, false, actor);
                if rng.random_bool(0.12) {
                    nat.push((ip, rng.random_range(1..=3)));
                    nat_ips[side] += 1;
                }
                ip
            };
            let agents = if country.code == home.code {
                &home_agents
            } else {
                &abroad_agents
            };
            let spec = ClientSpec {
                agent: weighted_copy(&mut rng, agents),
                lang: pick_copy(&mut rng, country.langs),
                bot: Bot::None,
                dc_signal: false,
                host: HostKind::Site,
                cookies: rng.random_bool(0.92),
                tls: rng.random_bool(0.6),
            };
            let client = self.add_client(&mut rng, ip, spec);

            let offset = country.utc_offset_min;
            let cdf = cdfs.entry(offset).or_insert_with(|| {
                MinuteCdf::new((0..minutes).map(|m| diurnal(self.local_minute(m, offset))))
            });
            let n_sessions = *weighted(&mut rng, &[(1u32, 70), (2, 22), (3, 8)]);
            let mut starts: Vec<i64> = (0..n_sessions)
                .map(|_| {
                    self.minute_ms(cdf.sample(&mut rng) as u32) + rng.random_range(0..MINUTE_MS)
                })
                .collect();
            starts.sort_unstable();
            let mut busy_until = i64::MIN;
            for t0 in starts {
                if t0 < busy_until {
                    continue;
                }
                session.clear();
                browse(&mut rng, t0, &mut session);
                busy_until = session.iter().map(|e| e.0).max().unwrap_or(t0) + MINUTE_MS;
                for &(ts, req) in &session {
                    if produced >= budget {
                        break;
                    }
                    produced += u64::from(self.push(ts, client, req, Verdict::Allow));
                }
            }
        }
        for (side, actor) in [home_actor, abroad_actor].into_iter().enumerate() {
            let who = if side == 0 {
                format!("shoppers in {}", home.code)
            } else {
                "overseas shoppers".to_string()
            };
            self.actors[actor as usize].note = format!(
                "{} {who} ({} on IPv6, {} NAT addresses shared by 2-4 users), human-paced sessions following \
                 their local day (busiest at lunch and 20-22 local time); mostly ALLOW",
                users[side], v6_users[side], nat_ips[side]
            );
        }
    }
}

/// Fisher-Yates with our RNG (keeps the output independent of `rand`'s shuffle algorithm).
fn shuffle<T, R: Rng>(rng: &mut R, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}

/// Product ids by popularity (a long tail).
fn popular_product<R: Rng>(rng: &mut R) -> u32 {
    1 + (f64::from(PRODUCTS - 1) * rng.random::<f64>().powf(2.5)) as u32
}

#[derive(Clone, Copy)]
enum Page {
    Home,
    Category(u8, u16),
    Product(u32),
    Search(u8, u8),
    Cart,
    Checkout,
    Account,
    Ranking,
    Sale,
    Login,
}

/// One shopper's visit: pages at human pace, each followed by the assets and API calls it triggers.
fn browse<R: Rng>(rng: &mut R, t0: i64, out: &mut Vec<(i64, Req)>) {
    let cats = catalog::CATEGORIES.len() as u8;
    let terms = catalog::SEARCH_TERMS.len() as u8;
    let mut page = match rng.random_range(0..100) {
        0..35 => Page::Home,
        35..65 => Page::Product(popular_product(rng)),
        65..80 => Page::Category(rng.random_range(0..cats), 1),
        80..90 => Page::Search(rng.random_range(0..terms), 1),
        90..95 => Page::Ranking,
        _ => Page::Account,
    };
    let mut t = t0;
    let asset = |rng: &mut R, t: i64| t + rng.random_range(80..1800);
    // First page: the bundle, stylesheet, font and favicon (cached afterwards).
    out.push((asset(rng, t), Req::Script { n: 0 }));
    out.push((asset(rng, t), Req::Script { n: 1 }));
    out.push((asset(rng, t), Req::Style));
    if rng.random_bool(0.3) {
        out.push((asset(rng, t), Req::Font));
    }
    if rng.random_bool(0.5) {
        out.push((asset(rng, t), Req::Favicon));
    }
    for n in 0..50 {
        let images = |rng: &mut R, out: &mut Vec<(i64, Req)>, max: u32| {
            for _ in 0..rng.random_range(0..=max) {
                out.push((
                    asset(rng, t),
                    Req::Image {
                        id: popular_product(rng),
                        n: 1,
                    },
                ));
            }
        };
        match page {
            Page::Home => {
                out.push((t, Req::Home));
                images(rng, out, 3);
            }
            Page::Category(cat, p) => {
                out.push((t, Req::Category { cat, page: p }));
                images(rng, out, 3);
            }
            Page::Product(id) => {
                out.push((t, Req::Product { id }));
                for k in 0..rng.random_range(1..=2) {
                    out.push((asset(rng, t), Req::Image { id, n: k + 1 }));
                }
                if rng.random_bool(0.6) {
                    out.push((asset(rng, t), Req::ApiRecommend { id }));
                }
                if rng.random_bool(0.004) {
                    let big = rng.random_bool(0.3);
                    out.push((
                        t + rng.random_range(30_000..90_000),
                        Req::ApiReview { id, big },
                    ));
                }
            }
            Page::Search(term, p) => {
                if p == 1 {
                    let len = rng.random_range(1..=3u8);
                    for k in 0..len {
                        let back = i64::from(len - k) * rng.random_range(400..1500);
                        out.push((t - back, Req::ApiSuggest { term, len: k + 1 }));
                    }
                }
                out.push((t, Req::Search { term, page: p }));
                images(rng, out, 2);
            }
            Page::Cart => out.push((t, Req::Cart)),
            Page::Checkout => out.push((t, Req::Checkout)),
            Page::Account => out.push((t, Req::MyPage)),
            Page::Ranking => {
                out.push((t, Req::Ranking));
                images(rng, out, 3);
            }
            Page::Sale => {
                out.push((t, Req::Sale));
                images(rng, out, 3);
            }
            Page::Login => {
                out.push((t, Req::LoginPage));
                t += rng.random_range(6_000..25_000);
                out.push((t, Req::LoginPost { api: false }));
                if rng.random_bool(0.12) {
                    t += rng.random_range(8_000..20_000);
                    out.push((t, Req::LoginPost { api: false }));
                }
                t += rng.random_range(300..900);
                out.push((t, Req::MyPage));
            }
        }
        if matches!(page, Page::Checkout) || (n > 0 && !rng.random_bool(0.86)) {
            break;
        }
        t += lognormal(rng, 22_000.0, 0.85).clamp(10_000.0, 480_000.0) as i64;
        let x = rng.random_range(0..100);
        page = match page {
            Page::Home => match x {
                0..35 => Page::Category(rng.random_range(0..cats), 1),
                35..60 => Page::Search(rng.random_range(0..terms), 1),
                60..85 => Page::Product(popular_product(rng)),
                85..93 => Page::Ranking,
                _ => Page::Sale,
            },
            Page::Category(c, p) => match x {
                0..55 => Page::Product(popular_product(rng)),
                55..75 => Page::Category(c, p + 1),
                75..85 => Page::Search(rng.random_range(0..terms), 1),
                85..93 => Page::Home,
                _ => Page::Category(rng.random_range(0..cats), 1),
            },
            Page::Product(id) => match x {
                0..30 => Page::Product(popular_product(rng)),
                30..50 => Page::Category((id % u32::from(cats)) as u8, 1),
                50..65 => Page::Search(rng.random_range(0..terms), 1),
                65..75 => {
                    out.push((t - rng.random_range(2_000..6_000), Req::ApiCartAdd { id }));
                    Page::Cart
                }
                75..85 => Page::Home,
                85..90 => Page::Ranking,
                _ => Page::Login,
            },
            Page::Search(term, p) => match x {
                0..60 => Page::Product(popular_product(rng)),
                60..75 => Page::Search(term, p.saturating_add(1)),
                75..90 => Page::Search(rng.random_range(0..terms), 1),
                _ => Page::Category(rng.random_range(0..cats), 1),
            },
            Page::Cart => match x {
                0..45 => Page::Checkout,
                45..75 => Page::Product(popular_product(rng)),
                _ => Page::Home,
            },
            Page::Account | Page::Login => match x {
                0..40 => Page::Home,
                40..70 => Page::Product(popular_product(rng)),
                _ => Page::Category(rng.random_range(0..cats), 1),
            },
            Page::Ranking | Page::Sale => match x {
                0..70 => Page::Product(popular_product(rng)),
                70..90 => Page::Category(rng.random_range(0..cats), 1),
                _ => Page::Home,
            },
            Page::Checkout => Page::Home,
        };
    }
}

impl World {
    pub(super) fn build(opts: &GenerateOptions, home: &'static Country) -> World {
        let start_ms = opts.start.as_millisecond();
        let minutes = opts.duration_minutes;
        let mut b = Builder {
            opts,
            start_ms,
            end_ms: start_ms + i64::from(minutes) * MINUTE_MS,
            minutes,
            home,
            alloc: IpAllocator::default(),
            ips: Vec::new(),
            clients: Vec::new(),
            actors: Vec::new(),
            events: Vec::with_capacity(opts.target_records.min(50_000_000) as usize + 1024),
            probes: catalog::probes(),
        };
        // Classes draw from disjoint streams; the allocator keeps their addresses disjoint too.
        let target = opts.target_records;
        let n_monitors = ((target as f64 * 0.02 / f64::from(minutes)) as usize)
            .clamp(1, catalog::MONITORS.len());
        let monitor_requests = b.monitors(n_monitors);
        let rest = target.saturating_sub(monitor_requests) as f64;
        b.verified_crawlers(rest);
        b.fake_crawlers(rest);
        b.scrapers(rest);
        b.scanners(rest);
        b.stuffers(rest);
        let others = b.events.len() as u64;
        b.browsers(target.saturating_sub(others).max(1));
        let blocks = opts.blocks.as_ref().map(|blocks| b.enforce(blocks));

        let mut world = World {
            end_ms: b.end_ms,
            ips: b.ips,
            clients: b.clients,
            stats: vec![ActorStats::default(); b.actors.len()],
            actors: b.actors,
            events: b.events,
            probes: b.probes,
            blocks,
        };
        world.events.sort_by_key(|e| (e.ts, e.client));
        world.apply_rate_rules();
        world.measure();
        world
    }

    /// Replays the two rate-based rules over the time-ordered events. A request counts toward a rule
    /// only when it reaches it (earlier rules did not terminate it); requests the rule itself blocks
    /// still count, as in WAF.
    fn apply_rate_rules(&mut self) {
        let mut general: Vec<VecDeque<i64>> = vec![VecDeque::new(); self.ips.len()];
        let mut login: Vec<VecDeque<i64>> = vec![VecDeque::new(); self.ips.len()];
        for ev in &mut self.events {
            if ev.verdict != Verdict::Allow {
                continue;
            }
            let ip = self.clients[ev.client as usize].ip as usize;
            if self.ips[ip].rate_scoped {
                let q = &mut general[ip];
                q.push_back(ev.ts);
                while q
                    .front()
                    .is_some_and(|&t| t <= ev.ts - catalog::RATE_WINDOW_MS)
                {
                    q.pop_front();
                }
                if q.len() > catalog::RATE_LIMIT {
                    ev.verdict = Verdict::RateBlock;
                    continue;
                }
            }
            if matches!(ev.req, Req::LoginPost { .. }) {
                let q = &mut login[ip];
                q.push_back(ev.ts);
                while q
                    .front()
                    .is_some_and(|&t| t <= ev.ts - catalog::RATE_WINDOW_MS)
                {
                    q.pop_front();
                }
                if q.len() > catalog::LOGIN_LIMIT {
                    ev.verdict = Verdict::Captcha;
                }
            }
        }
    }

    /// Counts per actor, the IPs that really sent something, and each actor's busiest IP-minute.
    fn measure(&mut self) {
        let mut per_ip: Vec<(i64, u32, u32, u64)> = vec![(i64::MIN, 0, 0, 0); self.ips.len()];
        for ev in &self.events {
            let ip = self.clients[ev.client as usize].ip as usize;
            let actor = self.ips[ip].actor as usize;
            let st = &mut self.stats[actor];
            st.requests += 1;
            match ev.verdict {
                Verdict::Allow => {}
                Verdict::Captcha => st.captcha += 1,
                Verdict::RateBlock => {
                    st.rate_blocked += 1;
                    st.blocked += 1;
                }
                Verdict::Managed(_) | Verdict::Cms | Verdict::Ledger => st.blocked += 1,
            }
            let minute = ev.ts.div_euclid(MINUTE_MS);
            let slot = &mut per_ip[ip];
            if slot.0 == minute {
                slot.1 += 1;
            } else {
                slot.0 = minute;
                slot.1 = 1;
            }
            slot.2 = slot.2.max(slot.1);
            slot.3 += 1;
        }
        for (i, ip) in self.ips.iter().enumerate() {
            if per_ip[i].3 > 0 {
                let st = &mut self.stats[ip.actor as usize];
                st.ips.push(ip.addr);
                st.peak_ip_minute = st.peak_ip_minute.max(per_ip[i].2);
            }
        }
        for st in &mut self.stats {
            st.ips.sort_unstable();
        }
    }
}
