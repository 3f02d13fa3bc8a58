//! `analyze`, `report` and `propose` with `--source athena` on a WAF table beside an ALB or a
//! CloudFront table, end to end through the CLI against moto. moto answers every query with the
//! next queued result (waf-facts section 5), so the results are the real ones: the statements the
//! CLI prints with `--print-sql` are run by DuckDB (transpiled by sqlglot) over the generated WAF
//! and origin files, and queued in the order the CLI runs them. The origin parts of each output
//! must then equal the local run's over the same files, for the join with WAF, the report's
//! origin health and the findings of a policy on origin signals.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use assert_cmd::Command;
use common::athena::{REGION, Rows, printed_offline, queue_result, text};
use common::moto::Moto;
use serde_json::{Value, json};
use waftune::athena::origin::{ALB_COLUMNS, ALB_REGEX, CLOUDFRONT_COLUMNS};
use waftune::athena::rows::ResultSet;
use waftune::log::{TimeRange, discover};
use waftune::origin::detect::split;

const SINCE: &str = "2026-11-19T20:00:00Z";
const UNTIL: &str = "2026-11-19T22:00:00Z";
const NOW: &str = "2026-11-19T22:05:00Z";
/// The edge address that connects to the fronted CloudFront distribution of the `proxied` copy.
const EDGE: &str = "130.176.4.138";

/// A policy on origin signals: clients behind a tenth of the origin's 5xx.
const POLICY: &str = "[[policy]]\nname = \"origin-errors\"\ndescription = \"clients behind a tenth \
    of the origin's 5xx\"\n[policy.match]\nnot = { labels = [\"awswaf:managed:aws:bot-control:bot:verified\"] }\n\
    [policy.thresholds]\norigin_5xx_share = 0.1\norigin_5xx = 20\n[policy.action]\ntype = \"report\"\n";

/// Two generated hours of WAF logs with the ALB's logs of the same traffic, the same ALB entries
/// as a CloudFront log (`cf`: `c-ip` is the viewer) and as the log of a CloudFront distribution
/// behind another front (`proxied`: `c-ip` is [`EDGE`], the viewer is in `x-forwarded-for`), and
/// [`POLICY`].
struct Data {
    dir: tempfile::TempDir,
}

impl Data {
    fn get() -> &'static Data {
        static DATA: OnceLock<Data> = OnceLock::new();
        DATA.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            Command::cargo_bin("waftune")
                .unwrap()
                .args(["generate", "--records", "6000", "--minutes", "120"])
                .args(["--seed", "4242", "--start", SINCE, "--origin-logs", "--out"])
                .arg(d.join("gen"))
                .assert()
                .success();
            let alb = origin_files(&d.join("gen/AWSLogs"));
            for (name, proxied) in [("cf", false), ("proxied", true)] {
                let path = d.join(format!(
                    "{name}/E2EXAMPLE/2026/11/19/E2EXAMPLE.2026-11-19-20.0a1b2c3d.gz"
                ));
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                let mut gz = flate2::write::GzEncoder::new(
                    std::fs::File::create(path).unwrap(),
                    flate2::Compression::fast(),
                );
                std::io::Write::write_all(&mut gz, cloudfront(&alb, proxied).as_bytes()).unwrap();
                gz.finish().unwrap();
            }
            std::fs::create_dir(d.join("policies")).unwrap();
            std::fs::write(d.join("policies/origin.toml"), POLICY).unwrap();
            Data { dir }
        })
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn waf_logs(&self) -> PathBuf {
        self.path("gen/AWSLogs/123456789012/WAFLogs")
    }

    /// A configuration for the `origin_kind` table `kind`, with `extra` appended.
    fn config(&self, kind: &str, extra: &str) -> PathBuf {
        let path = self.path(&format!("waftune-{kind}-{}.toml", extra.len()));
        std::fs::write(
            &path,
            format!(
                "scope = \"REGIONAL\"\nregion = \"{REGION}\"\nhome_country = \"JP\"\n\
                 policies = \"policies\"\nledger = \"state/{kind}-{}.toml\"\n\n\
                 [[ip_set_group]]\nname = \"blocklist\"\nipv4_set_name = \"v4\"\nipv6_set_name = \"v6\"\n\n\
                 [athena]\ndatabase = \"waf\"\ntable = \"waf_logs\"\norigin_table = \"origin_logs\"\n\
                 origin_kind = \"{kind}\"\noutput_location = \"s3://athena-results/waftune/\"\n\
                 layout = \"projection\"\n{extra}",
                extra.len()
            ),
        )
        .unwrap();
        path
    }
}

/// The ALB and CloudFront files under `path`.
fn origin_files(path: &Path) -> Vec<PathBuf> {
    let found = discover(&[path.to_owned()], &TimeRange::default()).unwrap();
    split(found.files)
        .1
        .iter()
        .map(|(f, _)| PathBuf::from(f.name.to_string()))
        .collect()
}

/// The entries of the ALB `files` as one CloudFront standard log with AWS's 33 fields (the
/// Athena table's columns), `proxied` as described at [`Data`].
fn cloudfront(files: &[PathBuf], proxied: bool) -> String {
    let mut out = String::from(
        "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end\n",
    );
    let secs =
        |ms: Option<u32>| ms.map_or("-".into(), |ms| format!("{:.3}", f64::from(ms) / 1000.0));
    for file in files {
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(file).unwrap()),
            &mut text,
        )
        .unwrap();
        for line in text.lines() {
            let e = waftune::origin::alb::parse(line).unwrap();
            let at = jiff::Timestamp::from_millisecond(e.time_ms).unwrap();
            let (c_ip, xff) = if proxied {
                (EDGE.to_owned(), format!("{},%20{EDGE}", e.client))
            } else {
                (e.client.to_owned(), "-".to_owned())
            };
            let status = e.elb_status_code.map_or("000".into(), |s| s.to_string());
            let ttfb = secs(e.target_processing_ms);
            out += &format!(
                "{}\t{}\tNRT57-P1\t{}\t{c_ip}\tGET\td111111abcdef8.cloudfront.net\t/\t{status}\t-\t-\t-\t-\t\
                 Miss\tid{}\tshop.example.com\thttps\t200\t{ttfb}\t{xff}\tTLSv1.3\tTLS_AES_128_GCM_SHA256\t\
                 Miss\tHTTP/2.0\t-\t-\t443\t{ttfb}\tMiss\ttext/html\t{}\t-\t-\n",
                at.strftime("%Y-%m-%d"),
                at.strftime("%H:%M:%S"),
                e.sent_bytes,
                e.time_ms,
                e.sent_bytes,
            );
        }
    }
    out
}

/// `waftune <args>` with `config`, quiet and colourless.
fn waftune(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("waftune").unwrap();
    cmd.current_dir(config.parent().unwrap())
        .args(args)
        .arg("-c")
        .arg(config)
        .env("NO_COLOR", "1")
        .env_remove("WAFTUNE_CONFIG");
    cmd
}

fn json_out(cmd: &mut Command) -> Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
}

/// The one result of a DuckDB run of `request` (see tests/support); runs with the same request
/// (the same statement on the same files) share it.
fn duckdb(script: &str, request: Value) -> ResultSet {
    static DONE: Mutex<Vec<(Value, ResultSet)>> = Mutex::new(Vec::new());
    if let Some((_, set)) = DONE.lock().unwrap().iter().find(|(r, _)| *r == request) {
        return set.clone();
    }
    let set = common::python::results(script, &request).remove(0);
    DONE.lock().unwrap().push((request, set.clone()));
    set
}

/// Runs `args` with `--source athena` on moto: the statements it prints with `--print-sql` are
/// run by DuckDB over the WAF files and `origin` (of `kind`), their results queued, then the
/// command runs for real. Returns its JSON and the statements.
async fn on_athena(
    config: &Path,
    args: &[&str],
    kind: &str,
    origin: &Path,
) -> (Value, Vec<String>) {
    let data = Data::get();
    let athena = |extra: &[&str]| {
        let mut cmd = waftune(config, args);
        cmd.args(["--source", "athena", "--since", SINCE, "--until", UNTIL])
            .args(extra);
        cmd
    };
    let printed = printed_offline(&mut athena(&["--print-sql"]));
    let statements: Vec<String> = printed
        .split(";\n")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let waf_files = {
        let found = discover(&[data.waf_logs()], &TimeRange::default()).unwrap();
        split(found.files)
            .0
            .iter()
            .map(|f| f.name.to_string())
            .collect::<Vec<_>>()
    };
    let moto = Moto::start().await;
    for sql in &statements {
        let set = if sql.contains("FROM origin_logs") {
            let columns = if kind == "alb" {
                ALB_COLUMNS
            } else {
                CLOUDFRONT_COLUMNS
            };
            duckdb(
                "origin_on_duckdb.py",
                json!({
                    "kind": kind, "table": "origin_logs", "columns": columns, "regex": ALB_REGEX,
                    "files": origin_files(origin), "queries": [sql],
                }),
            )
        } else {
            duckdb(
                "trino_on_duckdb.py",
                json!({
                    "table": "waf_logs", "columns": waftune::athena::sql::COLUMNS,
                    "files": waf_files, "queries": [sql],
                }),
            )
        };
        let mut rows: Rows = vec![text(&set.columns)];
        rows.extend(set.rows.iter().cloned());
        queue_result(&moto, &rows);
    }
    let out = json_out(athena(&[]).envs(moto.aws_env(REGION)));
    (out, statements)
}

/// `args` on the local files `logs`, over the same range.
fn local(config: &Path, args: &[&str], logs: &[PathBuf]) -> Value {
    let mut cmd = waftune(config, args);
    cmd.args(["--since", SINCE, "--until", UNTIL, "--logs"])
        .args(logs);
    json_out(&mut cmd)
}

/// The origin object without what only the local reader knows (files, malformed lines, records
/// out of range, first and last to the millisecond).
fn comparable(origin: &Value) -> Value {
    let mut o = origin.clone();
    for key in [
        "files",
        "malformed",
        "malformed_examples",
        "out_of_range",
        "first",
        "last",
    ] {
        o.as_object_mut().unwrap().remove(key);
    }
    o
}

fn assert_same_origin(local: &Value, athena: &Value, what: &str) {
    assert!(
        local["origin"].is_object(),
        "{what}: no local origin: {local}"
    );
    assert!(
        athena["origin"].is_object(),
        "{what}: no Athena origin: {athena}"
    );
    let (l, a) = (comparable(&local["origin"]), comparable(&athena["origin"]));
    if l != a {
        let (l, a) = (
            serde_json::to_string_pretty(&l).unwrap(),
            serde_json::to_string_pretty(&a).unwrap(),
        );
        panic!(
            "{what}: local (-) and Athena (+) differ:\n{}",
            similar::TextDiff::from_lines(&l, &a)
                .unified_diff()
                .context_radius(3)
        );
    }
}

/// `(key, fired)` of each finding, sorted.
fn findings(propose: &Value) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = propose["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["key"].as_str().unwrap().to_owned(), f["fired"].clone()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Runs analyze, report and propose on Athena and locally with `config` and the origin files
/// `origin`; checks that they agree; returns Athena's analyze, report and propose.
async fn three_commands(config: &Path, kind: &str, origin: &Path, flags: &[&str]) -> [Value; 3] {
    let data = Data::get();
    let logs = [data.waf_logs(), origin.to_owned()];
    let analyze: Vec<&str> = ["analyze", "--format", "json", "--top", "0"]
        .into_iter()
        .chain(flags.iter().copied())
        .collect();
    let (a, statements) = on_athena(config, &analyze, kind, origin).await;
    assert_eq!(statements.len(), 2, "{statements:?}");
    assert_same_origin(&local(config, &analyze, &logs), &a, "analyze");

    let report: Vec<&str> = ["report", "--format", "json", "--now", NOW]
        .into_iter()
        .chain(flags.iter().copied())
        .collect();
    let (r, statements) = on_athena(config, &report, kind, origin).await;
    assert_eq!(statements.len(), 2, "{statements:?}");
    let local_report = local(config, &report, &logs);
    assert_same_origin(&local_report, &r, "report");
    for key in ["hourly", "errors_5xx_geo"] {
        assert_eq!(
            local_report["origin"][key], r["origin"][key],
            "report {key}"
        );
    }

    let propose: Vec<&str> = [
        "propose",
        "--format",
        "json",
        "--now",
        NOW,
        "--dry-run",
        "--init-ledger",
    ]
    .into_iter()
    .chain(flags.iter().copied())
    .collect();
    let (p, statements) = on_athena(config, &propose, kind, origin).await;
    assert_eq!(statements.len(), 2, "{statements:?}");
    assert_eq!(findings(&local(config, &propose, &logs)), findings(&p));
    [a, r, p]
}

#[tokio::test]
async fn alb_table_beside_waf_through_the_cli() {
    let data = Data::get();
    let config = data.config("alb", "");
    let [analyze, report, propose] = three_commands(
        &config,
        "alb",
        &data.path("gen/AWSLogs/123456789012/elasticloadbalancing"),
        &[],
    )
    .await;
    let o = &analyze["origin"];
    // What WAF allowed reached the origin: every origin client is one WAF logged.
    assert!(o["records"].as_u64().unwrap() > 5_000, "{o}");
    assert_eq!(o["kinds"]["alb"], o["records"]);
    assert_eq!(o["waf_join"]["clients_not_seen_by_waf"], 0);
    assert!(o["status"]["5xx"].as_u64().unwrap() > 0);
    let top = &o["top_by_5xx"][0];
    assert_eq!(top["waf"]["actions"]["ALLOW"], top["requests"], "{top}");
    assert_eq!(
        report["origin"]["hourly"]["requests"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let found = findings(&propose);
    assert!(!found.is_empty());
    assert!(
        found[0].1[0].as_str().unwrap().starts_with("origin 5xx "),
        "{found:?}"
    );
}

/// A CloudFront table where `c-ip` is the viewer WAF saw; and behind another front, where `c-ip` is the front's address: without `forwarded_for` the origin has one
/// client WAF never saw and no policy can find anyone; with it (the flag or `[origin]`), the join
/// and the findings are those of the viewers, locally and on Athena alike.
#[tokio::test]
async fn cloudfront_table_beside_waf_through_the_cli_keyed_by_c_ip_or_forwarded_for() {
    let data = Data::get();
    let proxied = data.path("proxied");
    let config = data.config("cloudfront", "");
    let [plain, _, propose] = three_commands(&config, "cloudfront", &proxied, &[]).await;
    assert_eq!(plain["origin"]["distinct_clients"], 1);
    assert_eq!(plain["origin"]["waf_join"]["clients_not_seen_by_waf"], 1);
    assert_eq!(
        plain["origin"]["waf_join"]["requests_not_seen_by_waf"],
        plain["origin"]["records"]
    );
    assert!(findings(&propose).is_empty());

    let viewers = three_commands(&config, "cloudfront", &proxied, &["--forwarded-for"]).await;
    let configured = data.config("cloudfront", "\n[origin]\nforwarded_for = true\n");
    let from_config = three_commands(&configured, "cloudfront", &proxied, &[]).await;
    let direct = three_commands(&config, "cloudfront", &data.path("cf"), &[]).await;
    let o = &direct[0]["origin"];
    assert_eq!(o["kinds"]["cloudfront"], o["records"]);
    assert_eq!(o["waf_join"]["clients_not_seen_by_waf"], 0);
    assert!(!findings(&direct[2]).is_empty());
    for run in [&viewers, &from_config] {
        assert_eq!(run[0]["origin"]["waf_join"]["clients_not_seen_by_waf"], 0);
        // The viewers' view equals that of the distribution WAF sits on.
        assert_same_origin(&direct[0], &run[0], "analyze");
        assert_same_origin(&direct[1], &run[1], "report");
        assert_eq!(findings(&direct[2]), findings(&run[2]));
    }
}
