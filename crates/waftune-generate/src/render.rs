//! Turning an [`Event`] into one WAFv2 log line, field for field as WAF writes it for an ALB.
//!
//! The simulated web ACL (priority order): `geo-block-embargoed` (geo match: labels every request with
//! its country/region, never matches here), `AWS-AWSManagedRulesCommonRuleSet` (SizeRestrictions_BODY
//! overridden to Count), `AWS-AWSManagedRulesKnownBadInputsRuleSet` (ExploitablePaths_URIPATH answers a
//! custom 404), `AWS-AWSManagedRulesBotControlRuleSet` (common level, category and signal rules
//! overridden to Count, so it labels without blocking; scoped down to skip `/static/`, `/images/` and
//! `/favicon.ico`, so asset requests carry no Bot Control entry or label), `block-cms-probes` (custom 403),
//! `waftune-rate-limit-ip` (rate-based per IP, scope-down: not `bot:verified`, custom 429),
//! `waftune-watch-login` (Count on login POSTs, adds a label), `login-rate-captcha` (rate-based CAPTCHA
//! on login POSTs), default action Allow. With a ledger ([`crate::Blocks`]), waftune's rule answers its
//! entries right after the geo rule. A record lists the rule groups that were evaluated before
//! the terminating rule, as WAF does.

use std::fmt::Write as _;

use rand::Rng;
use serde::Serialize;

use super::catalog::{
    self, CATEGORIES, GROUP_IDS, GROUP_RULE_NAMES, Group, MANAGED_BLOCKS, RULE_CMS_PROBES,
    RULE_LOGIN_CAPTCHA, RULE_RATE_LIMIT, RULE_WATCH_LOGIN, SEARCH_TERMS, Style,
};
use super::traffic::{Bot, Client, Event, HostKind, Req, Verdict, World};

/// The shop's hostname (RFC 2606 reserved domain).
pub(super) const SITE_HOST: &str = "shop.example.com";

/// Per-run constants of the simulated deployment.
pub(super) struct RenderCtx {
    pub webacl_id: String,
    pub source_id: String,
    pub alb_host: String,
    pub origin: String,
    pub rate_arn: [String; 2],
    pub login_arn: [String; 2],
    pub login_label: String,
    pub js_hash: [String; 2],
    pub css_hash: String,
}

impl RenderCtx {
    pub(super) fn new<R: Rng>(rng: &mut R, account: &str, region: &str, acl: &str) -> Self {
        let acl_uuid = uuid(rng);
        let rate_uuid = uuid(rng);
        let login_uuid = uuid(rng);
        let arn = |rule: &str, v: &str| {
            format!(
                "arn:aws:wafv2:{region}:{account}_MANAGED:regional/ipset/{acl_uuid}_{rule}_{v}/{rule}"
            )
        };
        RenderCtx {
            webacl_id: format!("arn:aws:wafv2:{region}:{account}:regional/webacl/{acl}/{acl_uuid}"),
            source_id: format!("{account}-app/{acl}-alb/{:016x}", rng.random::<u64>()),
            alb_host: format!(
                "{acl}-alb-{}.{region}.elb.amazonaws.com",
                rng.random_range(1_000_000_000u64..10_000_000_000)
            ),
            origin: format!("https://{SITE_HOST}"),
            rate_arn: [arn(&rate_uuid, "IPV4"), arn(&rate_uuid, "IPV6")],
            login_arn: [arn(&login_uuid, "IPV4"), arn(&login_uuid, "IPV6")],
            login_label: format!("awswaf:{account}:webacl:{acl}:login-attempt"),
            js_hash: [
                format!("{:08x}", rng.random::<u32>()),
                format!("{:08x}", rng.random::<u32>()),
            ],
            css_hash: format!("{:08x}", rng.random::<u32>()),
        }
    }
}

fn uuid<R: Rng>(rng: &mut R) -> String {
    let v: u128 = rng.random();
    let v = (v & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[derive(Serialize)]
struct Header<'a> {
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct Label<'a> {
    name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MatchDetail<'a> {
    condition_type: &'a str,
    location: &'a str,
    matched_data: &'a [&'a str],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupTerminating<'a> {
    rule_id: &'a str,
    action: &'a str,
    rule_match_details: Option<()>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupMatch<'a> {
    rule_id: &'a str,
    action: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleGroup<'a> {
    rule_group_id: &'a str,
    terminating_rule: Option<GroupTerminating<'a>>,
    non_terminating_matching_rules: Vec<GroupMatch<'a>>,
    excluded_rules: Option<()>,
    customer_config: Option<()>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NonTerminating<'a> {
    rule_id: &'a str,
    action: &'a str,
    rule_match_details: [(); 0],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RateBased<'a> {
    rate_based_rule_id: &'a str,
    rate_based_rule_name: &'a str,
    limit_key: &'a str,
    max_rate_allowed: usize,
    evaluation_window_sec: i64,
    limit_value: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CaptchaResponse<'a> {
    response_code: u16,
    solve_timestamp: u64,
    failure_reason: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpRequest<'a> {
    client_ip: &'a str,
    country: &'a str,
    headers: &'a [Header<'a>],
    uri: &'a str,
    args: &'a str,
    http_version: &'a str,
    http_method: &'a str,
    request_id: &'a str,
    fragment: &'a str,
    scheme: &'a str,
    host: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    timestamp: i64,
    format_version: u8,
    webacl_id: &'a str,
    terminating_rule_id: &'a str,
    terminating_rule_type: &'a str,
    action: &'a str,
    terminating_rule_match_details: &'a [MatchDetail<'a>],
    http_source_name: &'a str,
    http_source_id: &'a str,
    rule_group_list: &'a [RuleGroup<'a>],
    rate_based_rule_list: &'a [RateBased<'a>],
    non_terminating_matching_rules: &'a [NonTerminating<'a>],
    request_headers_inserted: Option<()>,
    response_code_sent: Option<u16>,
    http_request: HttpRequest<'a>,
    labels: &'a [Label<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    captcha_response: Option<CaptchaResponse<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_body_size: Option<u32>,
    #[serde(
        rename = "requestBodySizeInspectedByWAF",
        skip_serializing_if = "Option::is_none"
    )]
    request_body_size_inspected_by_waf: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja3_fingerprint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja4_fingerprint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_asn: Option<u32>,
}

/// How the browser fetched the resource (drives Accept and sec-fetch-* headers).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fetch {
    Document,
    Image,
    Script,
    Style,
    Font,
    Json,
    JsonPost,
    FormPost,
}

struct Parts {
    method: &'static str,
    uri: String,
    args: String,
    fetch: Fetch,
    body: Option<u32>,
    referer: Option<String>,
}

/// Appends `s` percent-encoded as a query value (space as `+`, like browsers' form encoding).
fn encode_query(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

fn describe<R: Rng>(ctx: &RenderCtx, world: &World, req: Req, rng: &mut R) -> Parts {
    let origin = &ctx.origin;
    let mut p = Parts {
        method: "GET",
        uri: String::new(),
        args: String::new(),
        fetch: Fetch::Document,
        body: None,
        referer: None,
    };
    let external = |rng: &mut R| match rng.random_range(0..10) {
        0..4 => None,
        4..8 => Some("https://www.google.com/".to_string()),
        8 => Some("https://search.yahoo.co.jp/".to_string()),
        _ => Some("https://www.instagram.com/".to_string()),
    };
    match req {
        Req::Home => {
            p.uri.push('/');
            p.referer = external(rng);
        }
        Req::Category { cat, page } => {
            let _ = write!(p.uri, "/category/{}", CATEGORIES[cat as usize]);
            if page > 1 {
                let _ = write!(p.args, "page={page}");
            }
            p.referer = Some(format!("{origin}/"));
        }
        Req::Product { id } => {
            let _ = write!(p.uri, "/products/{id}");
            p.referer = match rng.random_range(0..10) {
                0..5 => Some(format!(
                    "{origin}/category/{}",
                    CATEGORIES[id as usize % CATEGORIES.len()]
                )),
                5..7 => Some(format!("{origin}/search")),
                7 => {
                    p.args.push_str("ref=recommend");
                    Some(format!("{origin}/products/{}", id / 2 + 1))
                }
                _ => external(rng),
            };
        }
        Req::Search { term, page } => {
            p.uri.push_str("/search");
            p.args.push_str("q=");
            encode_query(&mut p.args, SEARCH_TERMS[term as usize]);
            if page > 1 {
                let _ = write!(p.args, "&page={page}");
            }
            p.referer = Some(format!("{origin}/"));
        }
        Req::Cart => {
            p.uri.push_str("/cart");
            p.referer = Some(format!(
                "{origin}/products/{}",
                rng.random_range(1..catalog::PRODUCTS)
            ));
        }
        Req::Checkout => {
            p.uri.push_str("/checkout");
            p.referer = Some(format!("{origin}/cart"));
        }
        Req::MyPage => {
            p.uri.push_str("/mypage");
            p.referer = Some(format!("{origin}/login"));
        }
        Req::Ranking => {
            p.uri.push_str("/ranking");
            p.referer = Some(format!("{origin}/"));
        }
        Req::Sale => {
            p.uri.push_str("/sale");
            p.args.push_str("campaign=black-friday");
            p.referer = external(rng);
        }
        Req::LoginPage => {
            p.uri.push_str("/login");
            p.referer = Some(format!("{origin}/mypage"));
        }
        Req::LoginPost { api } => {
            p.method = "POST";
            if api {
                p.uri.push_str("/api/login");
                p.fetch = Fetch::JsonPost;
                p.body = Some(rng.random_range(48..96));
            } else {
                p.uri.push_str("/login");
                p.fetch = Fetch::FormPost;
                p.body = Some(rng.random_range(88..140));
            }
            p.referer = Some(format!("{origin}/login"));
        }
        Req::Script { n } => {
            let name = if n == 0 { "main" } else { "vendor" };
            let _ = write!(
                p.uri,
                "/static/js/{name}.{}.js",
                ctx.js_hash[n as usize % 2]
            );
            p.fetch = Fetch::Script;
            p.referer = Some(format!("{origin}/"));
        }
        Req::Style => {
            let _ = write!(p.uri, "/static/css/main.{}.css", ctx.css_hash);
            p.fetch = Fetch::Style;
            p.referer = Some(format!("{origin}/"));
        }
        Req::Font => {
            p.uri.push_str("/static/fonts/NotoSansJP-Regular.woff2");
            p.fetch = Fetch::Font;
            let _ = write!(
                p.referer.insert(String::new()),
                "{origin}/static/css/main.{}.css",
                ctx.css_hash
            );
        }
        Req::Favicon => {
            p.uri.push_str("/favicon.ico");
            p.fetch = Fetch::Image;
            p.referer = Some(format!("{origin}/"));
        }
        Req::Image { id, n } => {
            let _ = write!(p.uri, "/images/products/{id}_{n}.webp");
            if n == 1 {
                p.args.push_str("w=480");
            }
            p.fetch = Fetch::Image;
            p.referer = Some(format!("{origin}/products/{id}"));
        }
        Req::ApiRecommend { id } => {
            p.uri.push_str("/api/recommendations");
            let _ = write!(p.args, "product_id={id}&limit=12");
            p.fetch = Fetch::Json;
            p.referer = Some(format!("{origin}/products/{id}"));
        }
        Req::ApiCartAdd { id } => {
            p.method = "POST";
            p.uri.push_str("/api/cart/items");
            p.fetch = Fetch::JsonPost;
            p.body = Some(rng.random_range(38..64));
            p.referer = Some(format!("{origin}/products/{id}"));
        }
        Req::ApiReview { id, big } => {
            p.method = "POST";
            let _ = write!(p.uri, "/api/products/{id}/reviews");
            p.fetch = Fetch::JsonPost;
            p.body = Some(if big {
                rng.random_range(9_000..30_000)
            } else {
                rng.random_range(300..2_000)
            });
            p.referer = Some(format!("{origin}/products/{id}"));
        }
        Req::ApiSuggest { term, len } => {
            p.uri.push_str("/api/search/suggest");
            p.args.push_str("q=");
            let prefix: String = SEARCH_TERMS[term as usize]
                .chars()
                .take(len as usize)
                .collect();
            encode_query(&mut p.args, &prefix);
            p.fetch = Fetch::Json;
            p.referer = Some(format!("{origin}/"));
        }
        Req::ApiProducts { cat, page } => {
            p.uri.push_str("/api/products");
            let _ = write!(
                p.args,
                "category={}&page={page}&per_page=48&sort=new",
                CATEGORIES[cat as usize]
            );
            p.fetch = Fetch::Json;
        }
        Req::Robots => p.uri.push_str("/robots.txt"),
        Req::Sitemap { n } => {
            let _ = write!(p.uri, "/sitemap-products-{n}.xml");
        }
        Req::Health => p.uri.push_str("/health"),
        Req::Probe { idx } => {
            let probe = &world.probes[idx as usize];
            p.uri.push_str(&probe.uri);
            p.args.push_str(probe.args);
            if probe.post {
                p.method = "POST";
                p.fetch = Fetch::FormPost;
                p.body = Some(rng.random_range(24..420));
            }
        }
    }
    p
}

fn cookie(client: &Client, day: i64) -> String {
    let s = client.seed;
    let first_seen = 1_700_000_000 + (s >> 40) % 60_000_000;
    format!(
        "_ga=GA1.1.{}.{first_seen}; session_id={:016x}{:016x}",
        1_000_000_000 + s % 1_000_000_000,
        s.rotate_left(17) ^ day as u64,
        s.wrapping_mul(0x9e37_79b9_7f4a_7c15),
    )
}

/// Reusable per-file scratch space.
#[derive(Default)]
pub(super) struct Scratch {
    ja3: String,
}

/// Appends one JSON line for `ev` to `out`.
/// What an origin access log line needs of a request the WAF record describes.
pub(super) struct RequestLine {
    pub method: &'static str,
    /// Path and query, as sent.
    pub target: String,
    pub host: String,
    pub http2: bool,
    pub user_agent: &'static str,
    pub body: Option<u32>,
    /// The WAF record's request id, which ALB logs as its trace id.
    pub request_id: String,
}

/// Writes the WAF record of `ev` and returns what its origin log line needs.
pub(super) fn write_record<R: Rng>(
    ctx: &RenderCtx,
    world: &World,
    ev: &Event,
    rng: &mut R,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> RequestLine {
    let client = &world.clients[ev.client as usize];
    let ip = &world.ips[client.ip as usize];
    let agent = client.agent;
    let parts = describe(ctx, world, ev.req, rng);
    let host = match client.host {
        HostKind::Site => SITE_HOST,
        HostKind::AlbDns => ctx.alb_host.as_str(),
        HostKind::Localhost => "localhost",
    };
    let request_id = format!("1-{:08x}-{:024x}", ev.ts / 1000, rng.random::<u128>() >> 32);
    let body_len = parts.body.map(|b| b.to_string());
    let browser = matches!(
        agent.style,
        Style::Chromium | Style::Safari | Style::Firefox
    );
    let cookie = (browser && client.cookies).then(|| cookie(client, ev.ts / 86_400_000));

    // ---- headers
    let mut h: Vec<Header> = Vec::with_capacity(18);
    let mut add = |name: &'static str, value| h.push(Header { name, value });
    let referer = parts.referer.as_deref();
    let lang = client.lang;
    match agent.style {
        Style::Chromium => {
            let mobile = if agent.mobile { "?1" } else { "?0" };
            add("host", host);
            match parts.fetch {
                Fetch::Document => {
                    add("sec-ch-ua", agent.ch_ua);
                    add("sec-ch-ua-mobile", mobile);
                    add("sec-ch-ua-platform", agent.platform);
                    add("upgrade-insecure-requests", "1");
                    add("user-agent", agent.ua);
                    add(
                        "accept",
                        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
                    );
                    let site = match referer {
                        None => "none",
                        Some(r) if r.starts_with(&ctx.origin) => "same-origin",
                        Some(_) => "cross-site",
                    };
                    add("sec-fetch-site", site);
                    add("sec-fetch-mode", "navigate");
                    add("sec-fetch-user", "?1");
                    add("sec-fetch-dest", "document");
                }
                Fetch::JsonPost | Fetch::FormPost => {
                    add("content-length", body_len.as_deref().unwrap_or("0"));
                    add("sec-ch-ua-platform", agent.platform);
                    add("user-agent", agent.ua);
                    add("accept", "application/json, text/plain, */*");
                    add("sec-ch-ua", agent.ch_ua);
                    add(
                        "content-type",
                        if parts.fetch == Fetch::JsonPost {
                            "application/json"
                        } else {
                            "application/x-www-form-urlencoded"
                        },
                    );
                    add("sec-ch-ua-mobile", mobile);
                    add("origin", &ctx.origin);
                    add("sec-fetch-site", "same-origin");
                    add("sec-fetch-mode", "cors");
                    add("sec-fetch-dest", "empty");
                }
                _ => {
                    add("sec-ch-ua-platform", agent.platform);
                    add("user-agent", agent.ua);
                    add("sec-ch-ua", agent.ch_ua);
                    add("sec-ch-ua-mobile", mobile);
                    let (accept, dest, mode) = match parts.fetch {
                        Fetch::Image => (
                            "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
                            "image",
                            "no-cors",
                        ),
                        Fetch::Script => ("*/*", "script", "no-cors"),
                        Fetch::Style => ("text/css,*/*;q=0.1", "style", "no-cors"),
                        Fetch::Font => ("*/*", "font", "cors"),
                        _ => ("application/json, text/plain, */*", "empty", "cors"),
                    };
                    add("accept", accept);
                    add("sec-fetch-site", "same-origin");
                    add("sec-fetch-mode", mode);
                    add("sec-fetch-dest", dest);
                }
            }
            if let Some(r) = referer {
                add("referer", r);
            }
            add("accept-encoding", "gzip, deflate, br, zstd");
            add("accept-language", lang);
            if let Some(c) = cookie.as_deref() {
                add("cookie", c);
            }
            add(
                "priority",
                match parts.fetch {
                    Fetch::Document => "u=0, i",
                    Fetch::Image => "i",
                    _ => "u=1, i",
                },
            );
        }
        Style::Safari => {
            add("host", host);
            if let Some(n) = body_len.as_deref() {
                add(
                    "content-type",
                    if parts.fetch == Fetch::JsonPost {
                        "application/json"
                    } else {
                        "application/x-www-form-urlencoded"
                    },
                );
                add("content-length", n);
                add("origin", &ctx.origin);
            }
            let (accept, dest, mode) = match parts.fetch {
                Fetch::Document => (
                    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                    "document",
                    "navigate",
                ),
                Fetch::Image => (
                    "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
                    "image",
                    "no-cors",
                ),
                Fetch::Script => ("*/*", "script", "no-cors"),
                Fetch::Style => ("text/css,*/*;q=0.1", "style", "no-cors"),
                Fetch::Font => ("*/*", "font", "cors"),
                _ => ("application/json, text/plain, */*", "empty", "cors"),
            };
            add("accept", accept);
            add(
                "sec-fetch-site",
                if parts.fetch == Fetch::Document && referer.is_none() {
                    "none"
                } else {
                    "same-origin"
                },
            );
            if let Some(c) = cookie.as_deref() {
                add("cookie", c);
            }
            add("sec-fetch-dest", dest);
            add("accept-language", lang);
            add("sec-fetch-mode", mode);
            add("user-agent", agent.ua);
            if let Some(r) = referer {
                add("referer", r);
            }
            add("accept-encoding", "gzip, deflate, br");
            add(
                "priority",
                if parts.fetch == Fetch::Document {
                    "u=0, i"
                } else {
                    "u=3, i"
                },
            );
        }
        Style::Firefox => {
            add("host", host);
            add("user-agent", agent.ua);
            add(
                "accept",
                match parts.fetch {
                    Fetch::Document => {
                        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
                    }
                    Fetch::Image => {
                        "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"
                    }
                    Fetch::Style => "text/css,*/*;q=0.1",
                    Fetch::Json | Fetch::JsonPost | Fetch::FormPost => {
                        "application/json, text/plain, */*"
                    }
                    _ => "*/*",
                },
            );
            add("accept-language", lang);
            add("accept-encoding", "gzip, deflate, br, zstd");
            if let Some(n) = body_len.as_deref() {
                add(
                    "content-type",
                    if parts.fetch == Fetch::JsonPost {
                        "application/json"
                    } else {
                        "application/x-www-form-urlencoded"
                    },
                );
                add("content-length", n);
                add("origin", &ctx.origin);
            }
            if let Some(r) = referer {
                add("referer", r);
            }
            if let Some(c) = cookie.as_deref() {
                add("cookie", c);
            }
            if parts.fetch == Fetch::Document {
                add("upgrade-insecure-requests", "1");
            }
            add(
                "sec-fetch-dest",
                match parts.fetch {
                    Fetch::Document => "document",
                    Fetch::Image => "image",
                    Fetch::Script => "script",
                    Fetch::Style => "style",
                    Fetch::Font => "font",
                    _ => "empty",
                },
            );
            add(
                "sec-fetch-mode",
                if parts.fetch == Fetch::Document {
                    "navigate"
                } else {
                    "cors"
                },
            );
            add(
                "sec-fetch-site",
                if referer.is_some() {
                    "same-origin"
                } else {
                    "none"
                },
            );
            if parts.fetch == Fetch::Document {
                add("sec-fetch-user", "?1");
            }
            add(
                "priority",
                if parts.fetch == Fetch::Document {
                    "u=0, i"
                } else {
                    "u=4"
                },
            );
            add("te", "trailers");
        }
        Style::Crawler => {
            add("Host", host);
            add("Connection", "keep-alive");
            add(
                "Accept",
                if parts.fetch == Fetch::Image {
                    "image/avif,image/webp,image/*,*/*;q=0.8"
                } else {
                    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
                },
            );
            if agent.ua.contains("Googlebot") {
                add("From", "googlebot(at)googlebot.com");
            }
            add("User-Agent", agent.ua);
            add("Accept-Encoding", "gzip, deflate, br");
        }
        Style::Library => {
            add("Host", host);
            add("User-Agent", agent.ua);
            add("Accept-Encoding", "gzip, deflate");
            add("Accept", "*/*");
            add("Connection", "keep-alive");
            if let Some(n) = body_len.as_deref() {
                add("Content-Length", n);
                add("Content-Type", "application/x-www-form-urlencoded");
            }
        }
        Style::Minimal => {
            add("Host", host);
            add("User-Agent", agent.ua);
            add("Accept", "*/*");
            if let Some(n) = body_len.as_deref() {
                add("Content-Length", n);
                add("Content-Type", "application/x-www-form-urlencoded");
            }
        }
        Style::NoAgent => {
            add("Host", host);
            add("Accept", "*/*");
            add("Connection", "close");
        }
    }

    // ---- rule evaluation as WAF reports it
    // Bot Control is scoped down to skip static assets (it is billed per request).
    let static_asset = matches!(
        ev.req,
        Req::Script { .. } | Req::Style | Req::Font | Req::Favicon | Req::Image { .. }
    );
    let mut groups_reached = if static_asset { 2 } else { 3 };
    let mut term_group: Option<(Group, &'static str)> = None;
    let (term_id, term_type, action, response): (&str, &str, &str, Option<u16>) = match ev.verdict {
        Verdict::Allow => ("Default_Action", "REGULAR", "ALLOW", None),
        Verdict::Managed(i) => {
            let mb = &MANAGED_BLOCKS[i as usize];
            groups_reached = mb.group as usize + 1;
            term_group = Some((mb.group, mb.rule));
            (
                GROUP_RULE_NAMES[mb.group as usize],
                "MANAGED_RULE_GROUP",
                "BLOCK",
                mb.response,
            )
        }
        Verdict::Cms => (
            RULE_CMS_PROBES,
            "REGULAR",
            "BLOCK",
            Some(catalog::CMS_RESPONSE),
        ),
        Verdict::RateBlock => (
            RULE_RATE_LIMIT,
            "RATE_BASED",
            "BLOCK",
            Some(catalog::RATE_RESPONSE),
        ),
        Verdict::Captcha => (RULE_LOGIN_CAPTCHA, "RATE_BASED", "CAPTCHA", Some(405)),
        Verdict::Ledger => {
            // waftune's rule comes first (after the labelling geo rule): no group was evaluated.
            groups_reached = 0;
            let b = world
                .blocks
                .as_ref()
                .expect("ledger verdicts come with blocks");
            (b.rule.as_str(), "REGULAR", "BLOCK", Some(b.response_code))
        }
    };
    let detail_storage;
    let details: &[MatchDetail] = match ev.verdict {
        Verdict::Managed(i) => match MANAGED_BLOCKS[i as usize].detail {
            Some((condition_type, location, matched_data)) => {
                detail_storage = [MatchDetail {
                    condition_type,
                    location,
                    matched_data,
                }];
                &detail_storage
            }
            None => &[],
        },
        _ => &[],
    };

    let mut labels: Vec<Label> = Vec::with_capacity(8);
    labels.push(Label {
        name: &ip.geo_country_label,
    });
    if let Some(r) = &ip.geo_region_label {
        labels.push(Label { name: r });
    }
    let big_body = matches!(ev.req, Req::ApiReview { big: true, .. });
    let mut groups: Vec<RuleGroup> = Vec::with_capacity(3);
    for (g, group_id) in GROUP_IDS.iter().enumerate().take(groups_reached) {
        let mut rg = RuleGroup {
            rule_group_id: group_id,
            terminating_rule: None,
            non_terminating_matching_rules: Vec::new(),
            excluded_rules: None,
            customer_config: None,
        };
        if let Some((tg, rule)) = term_group
            && tg as usize == g
        {
            rg.terminating_rule = Some(GroupTerminating {
                rule_id: rule,
                action: "BLOCK",
                rule_match_details: None,
            });
            if let Verdict::Managed(i) = ev.verdict {
                labels.push(Label {
                    name: MANAGED_BLOCKS[i as usize].label,
                });
            }
        }
        if g == Group::Common as usize && big_body {
            rg.non_terminating_matching_rules.push(GroupMatch {
                rule_id: "SizeRestrictions_BODY",
                action: "COUNT",
            });
            labels.push(Label {
                name: "awswaf:managed:aws:core-rule-set:SizeRestrictions_Body",
            });
        }
        if g == Group::BotControl as usize {
            bot_control(client, &mut rg.non_terminating_matching_rules, &mut labels);
        }
        groups.push(rg);
    }

    let login_post = matches!(ev.req, Req::LoginPost { .. });
    let watch: &[NonTerminating] =
        if login_post && matches!(ev.verdict, Verdict::Allow | Verdict::Captcha) {
            labels.push(Label {
                name: &ctx.login_label,
            });
            &[NonTerminating {
                rule_id: RULE_WATCH_LOGIN,
                action: "COUNT",
                rule_match_details: [],
            }]
        } else {
            &[]
        };

    let v6 = usize::from(ip.addr.is_ipv6());
    let rate_storage;
    let rate: &[RateBased] = match ev.verdict {
        Verdict::RateBlock | Verdict::Captcha => {
            let (id, name, limit) = if ev.verdict == Verdict::RateBlock {
                (&ctx.rate_arn[v6], RULE_RATE_LIMIT, catalog::RATE_LIMIT)
            } else {
                (&ctx.login_arn[v6], RULE_LOGIN_CAPTCHA, catalog::LOGIN_LIMIT)
            };
            rate_storage = [RateBased {
                rate_based_rule_id: id,
                rate_based_rule_name: name,
                limit_key: "IP",
                max_rate_allowed: limit,
                evaluation_window_sec: catalog::RATE_WINDOW_MS / 1000,
                limit_value: &ip.text,
            }];
            &rate_storage
        }
        _ => &[],
    };

    let (ja3, ja4) = if client.tls {
        let ja3 = match agent.ja3 {
            Some(j) => j,
            None => {
                // Chromium permutes TLS extensions per connection: JA3 varies, JA4 does not.
                scratch.ja3.clear();
                let _ = write!(scratch.ja3, "{:032x}", rng.random::<u128>());
                scratch.ja3.as_str()
            }
        };
        (Some(ja3), Some(agent.ja4))
    } else {
        (None, None)
    };

    let record = Record {
        timestamp: ev.ts,
        format_version: 1,
        webacl_id: &ctx.webacl_id,
        terminating_rule_id: term_id,
        terminating_rule_type: term_type,
        action,
        terminating_rule_match_details: details,
        http_source_name: "ALB",
        http_source_id: &ctx.source_id,
        rule_group_list: &groups,
        rate_based_rule_list: rate,
        non_terminating_matching_rules: watch,
        request_headers_inserted: None,
        response_code_sent: response,
        http_request: HttpRequest {
            client_ip: &ip.text,
            country: ip.country,
            headers: &h,
            uri: &parts.uri,
            args: &parts.args,
            http_version: if agent.http2 { "HTTP/2.0" } else { "HTTP/1.1" },
            http_method: parts.method,
            request_id: &request_id,
            fragment: "",
            scheme: "https",
            host,
        },
        labels: &labels,
        captcha_response: (ev.verdict == Verdict::Captcha).then_some(CaptchaResponse {
            response_code: 405,
            solve_timestamp: 0,
            failure_reason: "TOKEN_MISSING",
        }),
        request_body_size: parts.body,
        request_body_size_inspected_by_waf: parts.body.map(|b| b.min(8_192)),
        ja3_fingerprint: ja3,
        ja4_fingerprint: ja4,
        client_asn: ip.asn,
    };
    serde_json::to_writer(&mut *out, &record).expect("serializing to a Vec cannot fail");
    out.push(b'\n');
    RequestLine {
        method: parts.method,
        target: if parts.args.is_empty() {
            parts.uri
        } else {
            format!("{}?{}", parts.uri, parts.args)
        },
        host: host.to_owned(),
        http2: agent.http2,
        user_agent: agent.ua,
        body: parts.body,
        request_id,
    }
}

/// Bot Control's labels and (count-overridden) rule matches for this client.
fn bot_control<'a>(client: &Client, rules: &mut Vec<GroupMatch<'a>>, labels: &mut Vec<Label<'a>>) {
    let mut rule = |r: &'static str| {
        rules.push(GroupMatch {
            rule_id: r,
            action: "COUNT",
        })
    };
    match client.bot {
        Bot::None => {}
        Bot::VerifiedSearch(name_label) => {
            labels.push(Label {
                name: "awswaf:managed:aws:bot-control:bot:category:search_engine",
            });
            labels.push(Label { name: name_label });
            labels.push(Label {
                name: "awswaf:managed:aws:bot-control:bot:verified",
            });
        }
        Bot::NonBrowser => {
            rule("SignalNonBrowserUserAgent");
            labels.push(Label {
                name: "awswaf:managed:aws:bot-control:signal:non_browser_user_agent",
            });
        }
        Bot::HttpLibrary => {
            rule("CategoryHttpLibrary");
            rule("SignalNonBrowserUserAgent");
            labels.push(Label {
                name: "awswaf:managed:aws:bot-control:bot:category:http_library",
            });
            labels.push(Label {
                name: "awswaf:managed:aws:bot-control:signal:non_browser_user_agent",
            });
        }
        Bot::Automated => {
            rule("SignalAutomatedBrowser");
            labels.push(Label {
                name: "awswaf:managed:aws:bot-control:signal:automated_browser",
            });
        }
        Bot::Monitoring(name_label) => {
            rule("CategoryMonitoring");
            labels.push(Label {
                name: "awswaf:managed:aws:bot-control:bot:category:monitoring",
            });
            labels.push(Label { name: name_label });
        }
    }
    if client.dc_signal {
        rule("SignalKnownBotDataCenter");
        labels.push(Label {
            name: "awswaf:managed:aws:bot-control:signal:known_bot_data_center",
        });
    }
}
