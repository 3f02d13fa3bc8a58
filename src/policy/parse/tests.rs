//! Validation as the user sees it: exact messages, positions and hints, and what compiles.

use std::path::Path;

use crate::log::ScanRecord;
use crate::policy::{
    AllowRule, KeyCounts, KeyKind, Loaded, Measure, Mode, OriginShare, PolicyAction, Severity,
    Threshold, Window, load_dir, parse_str,
};

const FILE: &str = "policies/test.toml";

fn load(text: &str) -> Result<Loaded, Vec<String>> {
    let groups = ["blocklist".to_string(), "scanners".to_string()];
    parse_str(text, Path::new(FILE), Some(&groups))
        .map_err(|diags| diags.iter().map(ToString::to_string).collect())
}

fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e,
    }
}

fn warnings(text: &str) -> Vec<String> {
    match load(text) {
        Ok(l) => l.warnings.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("{e:#?}"),
    }
}

/// A valid policy around the given match table.
fn with_match(conditions: &str) -> String {
    format!(
        "[[policy]]\nname = \"p\"\ndescription = \"d\"\n[policy.match]\n{conditions}\n\
         [policy.thresholds]\nrequests = 10\n[policy.action]\ntype = \"report\"\n"
    )
}

/// A valid policy with the given thresholds and action tables (both written out).
fn with(thresholds: &str, action: &str) -> String {
    format!(
        "[[policy]]\nname = \"p\"\ndescription = \"d\"\n[policy.thresholds]\n{thresholds}\n[policy.action]\n{action}\n"
    )
}

const REPORT: &str = "type = \"report\"";

fn record(json: &str) -> ScanRecord<'_> {
    sonic_rs::from_str(json).unwrap()
}

fn matches(conditions: &str, json: &str) -> bool {
    let loaded = load(&with_match(conditions)).unwrap();
    // The full model keeps every header, as the scan does for policies that read other headers.
    let full: crate::log::LogRecord = sonic_rs::from_str(json).unwrap();
    loaded.policies.policies[0].matcher.matches(&full.view())
}

// -------------------------------------------------------------------------------------------------
// error messages

#[test]
fn misspelled_keys_get_did_you_mean() {
    assert_eq!(
        errors(&with_match("pth = { prefix = \"/x\" }")),
        ["policies/test.toml:5:1: error: unknown condition `pth`\n  help: did you mean `path`?"]
    );
    assert_eq!(
        errors(&with("requests = 10\nmod = \"any\"", REPORT)),
        [
            "policies/test.toml:6:1: error: unknown key `mod` in `thresholds`\n  help: did you mean `mode`?"
        ]
    );
    let text = "[[policy]]\nname = \"p\"\ndescripton = \"d\"\nthresholds = { requests = 10 }\naction = { type = \"report\" }\n";
    assert_eq!(
        errors(text),
        [
            "policies/test.toml:1:1: error: policy `p` has no `description`\n  help: say what it catches: reviewers read it with every finding",
            "policies/test.toml:3:1: error: unknown key `descripton` in `[[policy]]`\n  help: did you mean `description`?",
        ]
    );
    // Far from every candidate: the candidates are listed instead.
    assert_eq!(
        errors(&with_match("zzzzzz = 1")),
        [
            "policies/test.toml:5:1: error: unknown condition `zzzzzz`\n  help: expected one of `all`, `any`, `not`, `path`, `method`, `host`, `user_agent`, `header`, `country`, `labels`, `action`, `terminating_rule`, `terminating_rule_type`, `count_rule`, `source`, `ja3`, `ja4`, `response_code`"
        ]
    );
    assert_eq!(
        errors(&with_match("method = \"POTS\"")),
        ["policies/test.toml:5:10: error: unknown method `POTS`\n  help: did you mean `POST`?"]
    );
    assert_eq!(
        errors(&with("requests = 10", "type = \"blok\"")),
        [
            "policies/test.toml:7:8: error: unknown action type `blok`\n  help: did you mean `block`?"
        ]
    );
}

#[test]
fn bad_regexes_name_the_problem() {
    assert_eq!(
        errors(&with_match("user_agent = \"python(\"")),
        ["policies/test.toml:5:14: error: invalid regex `python(`: unclosed group"]
    );
    assert_eq!(
        errors(&with_match("path = { regex = '^/(?!static/)' }")),
        [
            "policies/test.toml:5:18: error: invalid regex `^/(?!static/)`: look-around (`(?=`, `(?!`, `(?<=`, `(?<!`) is not supported: Rust's regex engine has none\n  help: policies use the regex subset shared by Rust's `regex` crate and Athena (Java); see docs/policies.md"
        ]
    );
    assert_eq!(
        errors(&with_match("path = \"/a[b\"")),
        [
            "policies/test.toml:5:8: error: invalid glob `/a[b`: unclosed `[` in glob\n  help: write `\\[` for a literal `[`"
        ]
    );
}

#[test]
fn bad_cidrs_suggest_the_network_address() {
    let text = "[[allow]]\ncidr = [\"192.0.2.0/24\", \"198.51.100.7/24\"]\ncomment = \"office\"\n\n\
                [[allow]]\ncidr = \"10.0.0.0/33\"\ncomment = \"x\"\n\n[[allow]]\ncidr = \"0.0.0.0/0\"\ncomment = \"x\"\n";
    assert_eq!(
        errors(text),
        [
            "policies/test.toml:2:25: error: `198.51.100.7/24` is not a network address\n  help: did you mean `198.51.100.0/24`?",
            "policies/test.toml:6:8: error: `10.0.0.0/33` is not an IP address or CIDR range\n  help: write an address (`192.0.2.7`) or a range (`192.0.2.0/24`)",
            "policies/test.toml:10:8: error: `0.0.0.0/0` is a /0 range, which would allow every client",
        ]
    );
}

#[test]
fn unknown_windows_list_the_aws_ones() {
    assert_eq!(
        errors(&with("peak = { window = \"3m\", requests = 100 }", REPORT)),
        [
            "policies/test.toml:5:19: error: unknown window `3m`\n  help: windows are those of AWS rate-based rules: `1m`, `2m`, `5m` or `10m`"
        ]
    );
    assert_eq!(
        errors(&with(
            "peak = [{ window = \"5m\", requests = 100 }, { window = \"5m\", requests = 200 }]",
            REPORT
        )),
        [
            "policies/test.toml:5:55: error: window `5m` appears twice in `peak`\n  help: keep one limit per window"
        ]
    );
}

#[test]
fn duplicate_names_across_files_point_at_both() {
    let dir = tempfile::tempdir().unwrap();
    let policy = |description: &str| {
        format!(
            "[[policy]]\nname = \"probe\"\ndescription = \"{description}\"\nthresholds = {{ requests = 10 }}\naction = {{ type = \"report\" }}\n"
        )
    };
    std::fs::write(dir.path().join("a.toml"), policy("first")).unwrap();
    std::fs::write(
        dir.path().join("b.toml"),
        format!("# the same name again\n{}", policy("second")),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a policy").unwrap();
    let diags = load_dir(dir.path(), None).unwrap_err();
    assert_eq!(diags.len(), 1);
    assert_eq!(
        diags[0].to_string(),
        format!(
            "{b}:3:8: error: duplicate policy name `probe`: already defined at {a}:2:8\n  help: policy names are recorded in the ledger, so they must be unique across all policy files",
            a = dir.path().join("a.toml").display(),
            b = dir.path().join("b.toml").display(),
        )
    );
}

#[test]
fn every_error_is_reported_in_one_run() {
    let text = r#"[[policy]]
name = "Bad Name"
description = "many mistakes"
key = "subnet"

[policy.match]
method = ["GET", "FETCH"]
country = { not_in = ["jp", "Japan"] }
labels = { any = ["awswaf:*:bot"] }
action = "COUNT"

[policy.thresholds]
requests = 0
blocked = { ratio = 1.5, min_blocked = 3 }

[policy.action]
type = "block"
group = "scanners"
duration = "5y"

[[allow]]
label = "awswaf:managed:aws:bot-control:bot:verified"
"#;
    assert_eq!(
        errors(text),
        [
            "policies/test.toml:2:8: error: policy name `Bad Name` must be 1 to 64 lowercase letters, digits, `-` or `_`, starting with a letter or digit",
            "policies/test.toml:4:7: error: unknown key `subnet`\n  help: expected one of `ip`, `prefix`, `campaign`",
            "policies/test.toml:7:18: error: unknown method `FETCH`\n  help: did you mean `PATCH`?",
            "policies/test.toml:8:23: error: country `jp` is not an ISO 3166 alpha-2 code\n  help: did you mean `JP`?",
            "policies/test.toml:8:29: error: country `Japan` is not an ISO 3166 alpha-2 code\n  help: write two capital letters, like `JP`, or `-` for requests without a known country",
            "policies/test.toml:9:19: error: label `awswaf:*:bot` has a `*` before its end\n  help: a label is exact, or a prefix ending in `*`, like `awswaf:managed:aws:bot-control:bot:*`",
            "policies/test.toml:10:10: error: unknown action `COUNT`\n  help: COUNT never terminates a request; match rules in COUNT mode with `count_rule`",
            "policies/test.toml:13:12: error: `requests` must be a whole number >= 1, not `0`",
            "policies/test.toml:14:21: error: `blocked.ratio` must be greater than 0 and at most 1, not `1.5`\n  help: it is a share: `0.8` means 80% of the matched requests",
            "policies/test.toml:19:12: error: `duration`: invalid duration `5y`: use a number and a unit, e.g. `30m`, `12h`, `7d`, `2w`",
            "policies/test.toml:21:1: error: allow entry without `comment`\n  help: say who or what this is and why it is allowed: an entry nobody can explain is never removed",
        ]
    );
}

#[test]
fn toml_syntax_errors_have_positions() {
    assert_eq!(
        errors("[[policy]]\nname = \"p\nthresholds = 1\n"),
        ["policies/test.toml:2:10: error: invalid basic string, expected `\"`"]
    );
}

#[test]
fn types_are_checked_with_the_value_quoted() {
    assert_eq!(
        errors(&with("requests = \"100\"", REPORT)),
        ["policies/test.toml:5:12: error: `requests` must be a whole number >= 1, not `\"100\"`"]
    );
    assert_eq!(
        errors("policy = { name = \"p\" }\n"),
        [
            "policies/test.toml:1:10: error: `policy` must be an array of tables\n  help: write `[[policy]]`, not `[policy]`"
        ]
    );
    assert_eq!(
        errors(&with_match("response_code = [403, 700]")),
        [
            "policies/test.toml:5:23: error: `response_code` must be an HTTP status (100 to 599) or a list of them, not `700`"
        ]
    );
}

#[test]
fn missing_parts_are_errors_at_the_policy() {
    assert_eq!(
        errors(&with("requests = 10", REPORT).replace("\"d\"", "\" \"")),
        [
            "policies/test.toml:3:15: error: `description` is empty\n  help: say what it catches: reviewers read it with every finding"
        ]
    );
    assert_eq!(
        errors("[[policy]]\nname = \"p\"\ndescription = \"d\"\n"),
        [
            "policies/test.toml:1:1: error: policy `p` has no `thresholds`\n  help: add at least one of `peak`, `requests`, `distinct_uris`, `active_minutes`, `active_hours`, `requests_per_day`, `active_share`, `blocked`, `origin_5xx`, `origin_5xx_share` or `origin_time_share`, e.g. `thresholds = { peak = { window = \"5m\", requests = 600 } }`",
            "policies/test.toml:1:1: error: policy `p` has no `action`\n  help: add `action = { type = \"report\" }` to watch it before blocking",
        ]
    );
    assert_eq!(
        errors(&with("mode = \"any\"", REPORT)),
        [
            "policies/test.toml:4:1: error: policy `p` has no thresholds\n  help: add at least one of `peak`, `requests`, `distinct_uris`, `active_minutes`, `active_hours`, `requests_per_day`, `active_share`, `blocked`, `origin_5xx`, `origin_5xx_share` or `origin_time_share`, e.g. `thresholds = { peak = { window = \"5m\", requests = 600 } }`"
        ]
    );
}

#[test]
fn action_keys_belong_to_their_type() {
    assert_eq!(
        errors(&with(
            "requests = 10",
            "type = \"report\"\ngroup = \"blocklist\""
        )),
        [
            "policies/test.toml:8:1: error: `group` is only used with `type = \"block\"`\n  help: a `report` action takes `note`, `rate_limit`"
        ]
    );
    assert_eq!(
        errors(&with(
            "requests = 10",
            "type = \"block\"\ngroup = \"blocklist\"\nduration = \"1d\"\nescalation = { factor = 2, max = \"1h\" }"
        )),
        [
            "policies/test.toml:10:34: error: `escalation.max` `1h` is shorter than `duration` `1d`\n  help: `max` caps the escalated duration, so it must be at least the first one"
        ]
    );
    assert_eq!(
        errors(&with(
            "requests = 10",
            "type = \"report\"\nrate_limit = { window = \"5m\", requests = 5 }"
        )),
        [
            "policies/test.toml:8:42: error: `rate_limit.requests` must be a whole number >= 10, not `5`"
        ]
    );
    assert_eq!(
        errors(&with(
            "requests = 10",
            "type = \"block\"\ngroup = \"blocklist\""
        )),
        ["policies/test.toml:6:1: error: `action` without `duration`"]
    );
}

#[test]
fn aggregate_needs_an_address_key() {
    let text = "[[policy]]\nname = \"p\"\ndescription = \"d\"\nkey = \"prefix\"\n\
                thresholds = { requests = 10 }\naction = { type = \"report\" }\naggregate = { min_offenders = 4 }\n";
    assert_eq!(
        errors(text),
        [
            "policies/test.toml:7:13: error: `aggregate` needs `key = \"ip\"`\n  help: with `key = \"prefix\"` the policy already proposes whole /24 and /64 networks"
        ]
    );
}

#[test]
fn allow_entries_hold_one_kind_with_a_comment() {
    assert_eq!(
        errors("[[allow]]\ncidr = \"192.0.2.0/24\"\nlabel = \"x:y\"\ncomment = \"c\"\n"),
        [
            "policies/test.toml:3:1: error: allow entry has both `cidr` and `label`\n  help: write one `[[allow]]` per kind"
        ]
    );
    assert_eq!(
        errors("[[allow]]\ncomment = \"c\"\n"),
        ["policies/test.toml:1:1: error: allow entry without `cidr`, `label` or `user_agent`"]
    );
    assert_eq!(
        errors(
            "[[allow]]\ncidr = \"192.0.2.0/24\"\ncomment = \"c\"\nexpires = 2027-01-01T00:00:00\n"
        ),
        [
            "policies/test.toml:4:11: error: `expires` `2027-01-01T00:00:00` is not an RFC 3339 timestamp with an offset\n  help: write a date, a time and an offset, like `2026-12-31T00:00:00Z`"
        ]
    );
}

// -------------------------------------------------------------------------------------------------
// warnings

#[test]
fn warnings_are_apart_from_errors() {
    let unknown_group = with(
        "requests = 10",
        "type = \"block\"\ngroup = \"blocklst\"\nduration = \"1d\"",
    );
    assert_eq!(
        warnings(&unknown_group),
        [
            "policies/test.toml:8:9: warning: policy `p` blocks into group `blocklst`, which waftune.toml does not configure\n  help: did you mean `blocklist`?"
        ]
    );
    // Without a list of groups there is nothing to check against.
    assert!(
        parse_str(&unknown_group, Path::new(FILE), None)
            .unwrap()
            .warnings
            .is_empty()
    );
    // With an error as well, the load fails and both are returned, each with its severity.
    let diags = parse_str(
        &unknown_group.replace("requests = 10", "requests = -1"),
        Path::new(FILE),
        Some(&["blocklist".to_string()]),
    )
    .unwrap_err();
    let severities: Vec<Severity> = diags.iter().map(|d| d.severity).collect();
    assert_eq!(severities, [Severity::Error, Severity::Warning]);
}

#[test]
fn policies_that_cannot_fire_warn() {
    assert_eq!(
        warnings(&with_match(
            "all = [{ action = \"ALLOW\" }, { action = \"BLOCK\" }]"
        )),
        [
            "policies/test.toml:4:1: warning: policy `p` can never match a request: its conditions exclude each other"
        ]
    );
    assert_eq!(
        warnings(&with_match("not = {}")),
        [
            "policies/test.toml:4:1: warning: policy `p` can never match a request: its conditions exclude each other"
        ]
    );
    let text = "[[policy]]\nname = \"p\"\ndescription = \"d\"\nmatch = { action = \"ALLOW\" }\n\
                thresholds = { blocked = { ratio = 0.5, min_blocked = 10 } }\naction = { type = \"report\" }\n";
    assert_eq!(
        warnings(text),
        [
            "policies/test.toml:5:26: warning: policy `p` can never fire: it only matches requests WAF did not block, so its `blocked` share stays at 0\n  help: allow `BLOCK` in the `action` condition, or remove `blocked`"
        ]
    );
    let text = text.replace(
        "thresholds = {",
        "thresholds = { mode = \"any\", requests = 100,",
    );
    assert_eq!(
        warnings(&text),
        [
            "policies/test.toml:5:56: warning: the `blocked` threshold of policy `p` can never fire: the policy only matches requests WAF did not block\n  help: allow `BLOCK` in the `action` condition, or remove `blocked`"
        ]
    );
}

#[test]
fn low_thresholds_escalation_without_effect_and_expired_entries_warn() {
    let text = with(
        "mode = \"any\"\nrequests = 50\ndistinct_uris = 2",
        "type = \"block\"\ngroup = \"blocklist\"\nduration = \"1h\"\nescalation = { factor = 1, max = \"1d\" }",
    ) + "\n[[allow]]\ncidr = \"192.0.2.0/24\"\ncomment = \"old office\"\nexpires = \"2020-01-01T00:00:00Z\"\n";
    assert_eq!(
        warnings(&text),
        [
            "policies/test.toml:4:1: warning: policy `p` can block a client after 2 requests\n  help: one stray request is not evidence: raise the thresholds, or use `type = \"report\"`",
            "policies/test.toml:12:25: warning: `escalation.factor` 1 never lengthens a block\n  help: use 2 to double the duration at each repeat offence, or remove `escalation`",
            "policies/test.toml:17:11: warning: allow entry `old office` expired at 2020-01-01T00:00:00Z: it no longer suppresses anything\n  help: remove it, or move `expires` forward",
        ]
    );
}

#[test]
fn unknown_sources_warn_and_are_kept() {
    let text = with_match("source = [\"alb\", \"LAMBDA\"]");
    assert_eq!(
        warnings(&text),
        [
            "policies/test.toml:5:18: warning: unknown source `LAMBDA`\n  help: expected one of `CF`, `ALB`, `APIGW`, `APPSYNC`, `COGNITOIDP`, `APPRUNNER`, `VERIFIED_ACCESS`, `AMPLIFY`"
        ]
    );
    assert!(matches(
        "source = [\"alb\", \"LAMBDA\"]",
        r#"{"timestamp":1,"httpSourceName":"LAMBDA","httpRequest":{"clientIp":"192.0.2.1"}}"#
    ));
}

// -------------------------------------------------------------------------------------------------
// what compiles

#[test]
fn every_condition_compiles_from_toml() {
    let json = r#"{"timestamp":1700000000000,"action":"BLOCK","terminatingRuleId":"AWS-AWSManagedRulesCommonRuleSet",
        "terminatingRuleType":"MANAGED_RULE_GROUP","httpSourceName":"CF","responseCodeSent":429,
        "ja3Fingerprint":"e7d705a3286e19ea42f587b344ee6865","ja4Fingerprint":"t13d1516h2_8daaf6152771_02713d6af862",
        "labels":[{"name":"awswaf:managed:aws:bot-control:signal:non_browser_user_agent"},{"name":"awswaf:clientip:geo:country:DE"}],
        "ruleGroupList":[{"nonTerminatingMatchingRules":[{"ruleId":"CategoryHttpLibrary"}]}],
        "httpRequest":{"clientIp":"203.0.113.9","country":"DE","uri":"/api/v2/login","httpMethod":"POST","host":"Shop.Example.com",
        "headers":[{"name":"User-Agent","value":"python-requests/2.31"},{"name":"X-Api-Key","value":"k-1"}]}}"#;
    let yes = [
        r#"path = "/api/*/login""#,
        r#"path = { prefix = "/API/", ignore_case = true }"#,
        r#"path = { equals = "/api/v2/login" }"#,
        r#"path = { regex = '^/api/v\d+/' }"#,
        r#"path = "/**/login""#,
        r#"method = ["GET", "post"]"#,
        r#"host = "*.example.com""#,
        r#"user_agent = '^python-requests/'"#,
        r#"user_agent = { prefix = "python" }"#,
        r#"header = { name = "X-API-KEY", prefix = "k-" }"#,
        r#"header = { name = "referer", present = false }"#,
        r#"header = { name = "x-api-key" }"#,
        r#"country = ["DE", "FR"]"#,
        r#"country = { not_in = ["JP"] }"#,
        r#"labels = ["awswaf:managed:aws:bot-control:signal:*"]"#,
        r#"labels = { all = ["awswaf:clientip:geo:country:DE", "awswaf:managed:*"], none = ["awswaf:managed:aws:bot-control:bot:verified"] }"#,
        r#"action = ["BLOCK", "CAPTCHA"]"#,
        r#"terminating_rule = "AWS-*""#,
        r#"terminating_rule_type = "managed_rule_group""#,
        r#"count_rule = "Category*""#,
        r#"source = "CF""#,
        r#"ja3 = "E7D705A3286E19EA42F587B344EE6865""#,
        r#"ja4 = "t13d*_8daaf6152771_*""#,
        r#"response_code = [403, 429]"#,
        r#"any = [{ method = "GET" }, { country = "DE" }]"#,
        r#"all = [{ method = "POST" }, { not = { method = "GET" } }]"#,
        r#"not = { any = [{ method = "GET" }, { country = "JP" }] }"#,
    ];
    for condition in yes {
        assert!(matches(condition, json), "{condition}");
    }
    let no = [
        r#"path = "/*/login""#,
        r#"path = { prefix = "/API/" }"#,
        r#"method = "GET""#,
        r#"host = { equals = "example.com" }"#,
        r#"user_agent = "curl""#,
        r#"header = { name = "x-api-key", present = false }"#,
        r#"country = { in = ["JP"] }"#,
        r#"labels = { none = ["awswaf:managed:aws:bot-control:*"] }"#,
        r#"action = "ALLOW""#,
        r#"terminating_rule_type = "REGULAR""#,
        r#"count_rule = "Signal*""#,
        r#"response_code = 403"#,
        r#"not = {}"#,
    ];
    for condition in no {
        assert!(!matches(condition, json), "{condition}");
    }
}

#[test]
fn a_full_policy_compiles_into_its_parts() {
    let text = r#"
[[policy]]
name = "login"
description = "Login attempts"
key = "ip"

[policy.match]
method = "POST"

[[policy.match.any]]
path = "/login"

[[policy.match.any]]
path = "/api/*/login"

[policy.thresholds]
mode = "any"
peak = [{ window = "10m", requests = 30 }, { window = "1m", requests = 10 }]
blocked = { ratio = 0.5, min_blocked = 5 }

[policy.action]
type = "block"
group = "blocklist"
duration = "12h"
escalation = { factor = 2, max = "7d" }

[policy.aggregate]
min_offenders = 4

[[policy.allow]]
user_agent = "^Monitor/"
comment = "our synthetic login check"

[[policy]]
name = "crawler"
description = "Busy verified crawlers"
key = "prefix"
match = { labels = ["awswaf:managed:aws:bot-control:bot:verified"] }
thresholds = { peak = { window = "5m", requests = 1000 } }
action = { type = "report", note = "rate-limit it", rate_limit = { window = "5m", requests = 1000 } }

[[policy]]
name = "off"
description = "validated, not loaded"
enabled = false
thresholds = { requests = 10 }
action = { type = "report" }
"#;
    let loaded = load(text).unwrap();
    assert!(loaded.warnings.is_empty());
    let set = loaded.policies;
    let names: Vec<&str> = set.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["crawler", "login"],
        "sorted by name, disabled left out"
    );

    let crawler = &set.policies[0];
    assert_eq!(crawler.key, KeyKind::Prefix);
    let PolicyAction::Report(report) = &crawler.action else {
        panic!("report expected")
    };
    assert_eq!(report.note.as_deref(), Some("rate-limit it"));
    assert_eq!(
        report.rate_limit.unwrap().to_string(),
        "rate-limit to 1,000 requests per 5m"
    );

    let login = &set.policies[1];
    assert_eq!(login.file, Path::new(FILE));
    assert_eq!(login.aggregate.unwrap().min_offenders, 4);
    assert_eq!(login.thresholds.mode, Mode::Any);
    assert_eq!(
        login.thresholds.list,
        [
            Threshold::at_least(Measure::Peak(Window::M1), 10),
            Threshold::at_least(Measure::Peak(Window::M10), 30),
            Threshold::Blocked {
                ratio: 0.5,
                min_blocked: 5
            },
        ],
        "thresholds in canonical order"
    );
    let PolicyAction::Block(block) = &login.action else {
        panic!("block expected")
    };
    assert_eq!(block.group, "blocklist");
    let days = |strikes| block.block_duration(strikes).as_secs() / 3600;
    assert_eq!([1, 2, 3, 4, 5].map(days), [12, 24, 48, 96, 168]);
    assert!(matches!(
        &login.allowlist.entries[0].rule,
        AllowRule::UserAgent(_)
    ));

    let post = |uri: &str| {
        format!(
            r#"{{"timestamp":1,"httpRequest":{{"clientIp":"192.0.2.1","uri":"{uri}","httpMethod":"POST"}}}}"#
        )
    };
    assert!(login.matcher.matches(&record(&post("/login"))));
    assert!(login.matcher.matches(&record(&post("/api/v1/login"))));
    assert!(!login.matcher.matches(&record(&post("/api/v1/x/login"))));
    assert!(!login.matcher.matches(&record(&post("/logout"))));

    let fired = login
        .thresholds
        .check(&KeyCounts {
            requests: 40,
            peaks: [12, 20, 30, 40],
            distinct_uris: 1,
            blocked: 0,
            ..KeyCounts::default()
        })
        .unwrap();
    let fired: Vec<String> = fired.iter().map(ToString::to_string).collect();
    assert_eq!(fired, ["peak 1m 12 >= 10", "peak 10m 40 >= 30"]);
}

#[test]
fn allow_entries_compile_with_their_location() {
    let text = "# office\n[[allow]]\ncidr = [\"192.0.2.0/24\", \"2001:db8::1\"]\ncomment = \"office\"\n\
                expires = 2099-01-01T00:00:00Z\n\n[[allow]]\nlabel = \"awswaf:managed:aws:bot-control:bot:name:*\"\n\
                comment = \" monitors \"\nexpires = \"2099-01-01T09:00:00+09:00\"\n";
    let loaded = load(text).unwrap();
    assert!(loaded.warnings.is_empty());
    let entries = &loaded.policies.allowlist.entries;
    assert_eq!(
        entries[0].to_string(),
        "cidr 192.0.2.0/24, 2001:db8::1/128 (policies/test.toml:2: office)"
    );
    assert_eq!(entries[1].comment, "monitors");
    assert_eq!(
        entries[1].expires.unwrap().to_string(),
        "2099-01-01T00:00:00Z"
    );
    let now = "2026-01-01T00:00:00Z".parse().unwrap();
    assert_eq!(
        loaded
            .policies
            .allowlist
            .cidrs(now)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["192.0.2.0/24", "2001:db8::1/128"]
    );
}

#[test]
fn an_empty_file_warns() {
    assert_eq!(
        warnings("# nothing yet\n"),
        ["policies/test.toml:1:1: warning: no `[[policy]]` or `[[allow]]` in this file"]
    );
}

#[test]
fn sustained_relative_and_campaign_thresholds_are_checked_in_place() {
    assert_eq!(
        errors(&with(
            "active_share = 1.5\nactive_minutes = 0\nrequests = { percentile = 120, factor = 2 }\npeak = { window = \"10m\", requests = { percentile = 99, factor = -1 } }\ndistinct_uris = { factor = 2, min = 3, pct = 9 }\naddresses = 5",
            REPORT
        )),
        [
            "policies/test.toml:5:16: error: `active_share` must be greater than 0 and at most 1, not `1.5`\n  help: it is a share of the hours the logs span: `0.5` means half of them",
            "policies/test.toml:6:18: error: `active_minutes` must be a whole number >= 1, not `0`",
            "policies/test.toml:7:27: error: `requests.percentile` must be greater than 0 and at most 100, not `120`\n  help: `99` compares with the site's 99th percentile",
            "policies/test.toml:8:65: error: `peak.requests.factor` must be greater than 0, not `-1`",
            "policies/test.toml:9:17: error: `distinct_uris` without `percentile`",
            "policies/test.toml:9:40: error: unknown key `pct` in `distinct_uris`\n  help: expected one of `percentile`, `factor`, `min`",
            "policies/test.toml:10:13: error: `addresses` counts a campaign's members: it needs `key = \"campaign\"`\n  help: a campaign's `[policy.thresholds]` apply to its members together",
        ]
    );
    let campaign = |members: &str, thresholds: &str| {
        format!(
            "[[policy]]\nname = \"c\"\ndescription = \"d\"\nkey = \"campaign\"\n{members}\n[policy.thresholds]\n{thresholds}\n[policy.action]\ntype = \"report\"\n"
        )
    };
    assert_eq!(
        errors(&campaign(
            "members = { addresses = 2 }",
            "requests = { percentile = 99, factor = 2 }"
        )),
        [
            "policies/test.toml:5:25: error: `addresses` counts a campaign's members: it needs `key = \"campaign\"`\n  help: a campaign's `[policy.thresholds]` apply to its members together",
            "policies/test.toml:7:12: error: `requests` of a campaign cannot be relative to the site\n  help: relative limits compare a key with the site's addresses or networks; put them in `[policy.members]`",
        ]
    );
    assert_eq!(
        errors(&with("requests = 10", REPORT).replace(
            "[policy.thresholds]",
            "members = { requests = 2 }\n[policy.thresholds]"
        )),
        [
            "policies/test.toml:4:11: error: `members` needs `key = \"campaign\"`\n  help: members are the addresses of a campaign; other policies judge each key by `[policy.thresholds]`"
        ]
    );
    // A valid campaign: members are judged per address, the thresholds on the group.
    let set = load(&campaign(
        "members = { requests = { percentile = 90, factor = 3, min = 5 } }",
        "addresses = 5\nrequests = 200",
    ))
    .unwrap()
    .policies;
    let p = &set.policies[0];
    assert_eq!(p.key, KeyKind::Ip);
    assert!(p.thresholds.is_relative());
    assert_eq!(p.thresholds.min_requests(), 1);
    let group = p.campaign.as_ref().unwrap();
    assert_eq!(
        group.list,
        [
            Threshold::at_least(Measure::Requests, 200),
            Threshold::at_least(Measure::Addresses, 5)
        ]
    );
    // Without `members`, every address that sent a matched request is one.
    let set = load(&campaign("", "addresses = 5")).unwrap().policies;
    assert_eq!(
        set.policies[0].thresholds.list,
        [Threshold::at_least(Measure::Requests, 1)]
    );
    // A relative limit's floor is what the low-threshold warning judges.
    assert_eq!(
        warnings(&with(
            "requests = { percentile = 95, factor = 5, min = 2 }",
            "type = \"block\"\ngroup = \"blocklist\"\nduration = \"1h\""
        )),
        [
            "policies/test.toml:4:1: warning: policy `p` can block a client after 2 requests\n  help: one stray request is not evidence: raise the thresholds, or use `type = \"report\"`"
        ]
    );
}

#[test]
fn origin_thresholds_parse_and_are_checked_in_place() {
    let set = load(&with(
        "origin_time_share = 0.1\norigin_5xx = 300\norigin_5xx_share = 0.25\nrequests = 50",
        REPORT,
    ))
    .unwrap()
    .policies;
    let t = &set.policies[0].thresholds;
    assert!(t.uses_origin());
    assert_eq!(
        t.list,
        [
            Threshold::at_least(Measure::Requests, 50),
            Threshold::at_least(Measure::Origin5xx, 300),
            Threshold::Origin {
                share: OriginShare::Errors5xx,
                ratio: 0.25
            },
            Threshold::Origin {
                share: OriginShare::Time,
                ratio: 0.1
            },
        ]
    );
    assert!(
        !load(&with("requests = 50", REPORT))
            .unwrap()
            .policies
            .policies[0]
            .thresholds
            .uses_origin()
    );
    assert_eq!(
        errors(&with(
            "origin_time_share = 1.5\norigin_5xx = 0\norigin_5xx_share = \"x\"",
            REPORT
        )),
        [
            "policies/test.toml:5:21: error: `origin_time_share` must be greater than 0 and at most 1, not `1.5`\n  help: a share of the origin's time over the period: `0.1` means a tenth of it",
            "policies/test.toml:6:14: error: `origin_5xx` must be a whole number >= 1, not `0`",
            "policies/test.toml:7:20: error: `origin_5xx_share` must be a number, not `\"x\"`",
        ]
    );
    let campaign = "[[policy]]\nname = \"c\"\ndescription = \"d\"\nkey = \"campaign\"\n[policy.thresholds]\naddresses = 2\norigin_5xx = 10\n[policy.action]\ntype = \"report\"\n";
    assert_eq!(
        errors(campaign),
        [
            "policies/test.toml:7:14: error: `origin_5xx` is per address or network, not per campaign\n  help: put it in `[policy.members]`"
        ]
    );
}
