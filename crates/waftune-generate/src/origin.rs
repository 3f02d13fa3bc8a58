//! The origin's side of the generated traffic: the Application Load Balancer access log of the
//! shop behind the web ACL. Only requests WAF allowed reach it (blocked, CAPTCHA-answered and
//! ledger-blocked ones never appear). The origin is sized for its usual traffic: in a minute in
//! which scrapers send more than [`STRAIN_SHARE`] of the run's median minute, it strains, and its
//! dynamic pages answer more slowly and with 5xx, scrapers' own requests most of all (they ask for
//! the pages that strain it). Static files and health checks stay fast.

use std::fmt::Write as _;

use jiff::Timestamp;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::ActorClass;
use crate::render::RequestLine;
use crate::traffic::{Event, Req, Verdict, World};

/// Scraper requests in a minute, as a share of the median minute's allowed requests, from which
/// the origin strains.
pub(crate) const STRAIN_SHARE: f64 = 0.25;

/// The load balancer's name in the logs.
const ELB: &str = "app/shop-prod-alb/5f2e1a0b9c8d7e6f";

/// What the origin made of the run (`truth.json`'s `origin`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginTruth {
    /// Requests in the ALB log: exactly WAF's ALLOW records.
    pub requests: u64,
    pub errors_5xx: u64,
    /// Minutes in which scrapers strained the origin, and the 5xx answered in them.
    pub strained_minutes: u64,
    pub errors_5xx_in_strained_minutes: u64,
    /// Per actor (same order as `actors`): requests that reached the origin, and their 5xx.
    pub actors: Vec<OriginActor>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginActor {
    pub name: String,
    pub requests: u64,
    pub errors_5xx: u64,
}

/// Per-minute strain of the origin, from the allowed traffic.
pub(crate) struct Strain {
    first_minute: i64,
    /// Scraper requests over the strain threshold, as a multiple of the median minute (0: none).
    by_minute: Vec<f64>,
}

impl Strain {
    pub(crate) fn of(world: &World) -> Strain {
        let Some(first) = world.events.first() else {
            return Strain {
                first_minute: 0,
                by_minute: Vec::new(),
            };
        };
        let first_minute = first.ts.div_euclid(60_000);
        let last_minute = world
            .events
            .last()
            .map_or(first_minute, |e| e.ts.div_euclid(60_000));
        let n = (last_minute - first_minute + 1) as usize;
        let (mut all, mut scraper) = (vec![0u32; n], vec![0u32; n]);
        for ev in world.events.iter().filter(|e| e.verdict == Verdict::Allow) {
            let i = (ev.ts.div_euclid(60_000) - first_minute) as usize;
            all[i] += 1;
            if class_of(world, ev) == ActorClass::Scraper {
                scraper[i] += 1;
            }
        }
        let mut busy: Vec<u32> = all.iter().copied().filter(|&c| c > 0).collect();
        busy.sort_unstable();
        let median = f64::from(busy.get(busy.len() / 2).copied().unwrap_or(1).max(1));
        let by_minute = scraper
            .iter()
            .map(|&s| (f64::from(s) / median - STRAIN_SHARE).clamp(0.0, 3.0))
            .collect();
        Strain {
            first_minute,
            by_minute,
        }
    }

    fn at(&self, ts: i64) -> f64 {
        let i = ts.div_euclid(60_000) - self.first_minute;
        usize::try_from(i)
            .ok()
            .and_then(|i| self.by_minute.get(i))
            .copied()
            .unwrap_or(0.0)
    }

    pub(crate) fn strained(&self, ts: i64) -> bool {
        self.at(ts) > 0.0
    }

    pub(crate) fn strained_minutes(&self) -> u64 {
        self.by_minute.iter().filter(|&&s| s > 0.0).count() as u64
    }
}

fn class_of(world: &World, ev: &Event) -> ActorClass {
    let client = &world.clients[ev.client as usize];
    world.actors[usize::from(world.ips[client.ip as usize].actor)].class
}

/// Per actor: requests at the origin, their 5xx, and the 5xx in strained minutes.
pub(crate) type Counts = Vec<[u64; 3]>;

/// Appends the ALB access log line of an allowed request; returns its status.
pub(crate) fn write_line<R: Rng>(
    world: &World,
    ev: &Event,
    req: &RequestLine,
    strain: &Strain,
    rng: &mut R,
    out: &mut String,
) -> u16 {
    let client = &world.clients[ev.client as usize];
    let ip = &world.ips[client.ip as usize];
    let class = world.actors[usize::from(ip.actor)].class;
    let dynamic = !matches!(
        ev.req,
        Req::Script { .. }
            | Req::Style
            | Req::Font
            | Req::Favicon
            | Req::Image { .. }
            | Req::Robots
            | Req::Health
            | Req::Probe { .. }
    );
    // Milliseconds at the origin when it is not strained, and bytes of the answer.
    let (base, bytes): ((u32, u32), (u64, u64)) = match ev.req {
        Req::Script { .. } | Req::Style | Req::Font | Req::Favicon | Req::Robots => {
            ((1, 6), (800, 60_000))
        }
        Req::Image { .. } => ((2, 9), (8_000, 180_000)),
        Req::Health => ((1, 3), (40, 60)),
        Req::Probe { .. } => ((1, 5), (300, 600)),
        Req::Search { .. } => ((80, 250), (30_000, 70_000)),
        Req::LoginPost { .. } => ((100, 300), (200, 900)),
        Req::ApiRecommend { .. }
        | Req::ApiCartAdd { .. }
        | Req::ApiReview { .. }
        | Req::ApiSuggest { .. }
        | Req::ApiProducts { .. } => ((15, 60), (500, 6_000)),
        Req::Sitemap { .. } => ((50, 100), (20_000, 90_000)),
        _ => ((30, 120), (25_000, 90_000)),
    };
    let s = if dynamic { strain.at(ev.ts) } else { 0.0 };
    let mut target_ms = f64::from(rng.random_range(base.0..=base.1)) * (1.0 + 3.0 * s);
    let p5xx = if dynamic {
        0.001 + (0.5 * s).min(0.6)
    } else {
        0.0
    };
    // (status the client got, status of the target or none when the ALB answered itself)
    let (status, target_status) = if rng.random::<f64>() < p5xx {
        match rng.random_range(0..10) {
            0..5 => (503, Some(503)),
            5..7 => (500, Some(500)),
            7..9 => (504, None),
            _ => (502, None),
        }
    } else {
        let ok = match ev.req {
            Req::Probe { .. } => 404,
            Req::LoginPost { .. } if class == ActorClass::CredentialStuffer => 401,
            Req::Image { .. } | Req::Script { .. } | Req::Style if rng.random_range(0..10) == 0 => {
                304
            }
            _ => 200,
        };
        (ok, Some(ok))
    };
    if status == 504 {
        target_ms = 10_000.0;
    }
    let sent: u64 = match status {
        304 => 250,
        s if s >= 500 => 420,
        _ => rng.random_range(bytes.0..=bytes.1),
    };
    let request_ms = rng.random_range(0..=2u32);
    let response_ms = rng.random_range(0..=1u32);
    let created = Timestamp::from_millisecond(ev.ts).expect("validated time range");
    let done_us = ev.ts * 1000
        + i64::from(request_ms) * 1000
        + (target_ms * 1000.0) as i64
        + i64::from(response_ms) * 1000
        + rng.random_range(0..1000);
    let done = Timestamp::from_microsecond(done_us).expect("validated time range");
    let target = format!("10.0.{}.{}:8080", 1 + ev.client % 3, 10 + ev.client % 40);
    let (target_field, target_time) = match target_status {
        Some(_) => (target.as_str(), format!("{:.3}", target_ms / 1000.0)),
        // The ALB gave up on the target (504) or could not reach it (502): no target time.
        None => (target.as_str(), "-1".to_owned()),
    };
    let code = |c: Option<u16>| c.map_or("-".to_owned(), |c| c.to_string());
    let port = 1024 + (ev.ts.rem_euclid(64_000) as u32 + ev.client) % 64_000;
    let received = 200 + req.target.len() as u64 + u64::from(req.body.unwrap_or(0));
    let _ = writeln!(
        out,
        "{kind} {time} {ELB} {ip}:{port} {target_field} {req_t:.3} {target_time} {resp_t:.3} {status} {ts} {received} {sent} \"{method} https://{host}:443{path} {version}\" \"{ua}\" TLS_AES_128_GCM_SHA256 TLSv1.3 arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/shop-web/0a1b2c3d4e5f6071 \"Root={root}\" \"{host}\" \"arn:aws:acm:ap-northeast-1:123456789012:certificate/5e0c2a1b-0000-4000-8000-00000000abcd\" 1 {created} \"waf,forward\" \"-\" \"-\" \"{target}\" \"{ts}\" \"-\" \"-\" TID_{tid:016x}",
        kind = if req.http2 { "h2" } else { "https" },
        time = done.strftime("%Y-%m-%dT%H:%M:%S.%6fZ"),
        ip = ip.text,
        req_t = f64::from(request_ms) / 1000.0,
        resp_t = f64::from(response_ms) / 1000.0,
        ts = code(target_status),
        method = req.method,
        host = req.host,
        path = req.target,
        version = if req.http2 { "HTTP/2.0" } else { "HTTP/1.1" },
        ua = req.user_agent.replace('"', "\\\""),
        root = req.request_id,
        created = created.strftime("%Y-%m-%dT%H:%M:%S.%6fZ"),
        tid = rng.random::<u64>(),
    );
    status
}
