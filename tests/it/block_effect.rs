//! The report's block-effect verdicts against the generator's ground truth: a ledger covering the
//! offenders of a generated run is enforced by the generator (they are answered 403 by waftune's
//! rule, then stop, persist or rotate with known shares), and `waftune report` must tell which;
//! `waftune propose` then escalates the persisting (another strike) and the rotated (their /24).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::Command;

use crate::report::{root, run};
use assert_cmd::cargo::CommandCargoExt;
use ipnet::IpNet;
use waftune_generate::{ActorClass, GenerateOptions, Outcome, Truth, generate};

const START: &str = "2026-11-18T00:00:00Z";
const ADDED: &str = "2026-11-18T12:00:00Z";
/// A day's block from `added` would be over before the logs end; two days' is not.
const EXPIRES: &str = "2026-11-20T12:00:00Z";
/// A blocking policy of `examples/policies` (1 d, doubled per strike): the entries' policy.
const POLICY: &str = "path-scanner";
/// Two days: 36 h of logs after `added`, so that "24 h after the first answer" is inside them.
const MINUTES: u32 = 2880;
const RECORDS: u64 = 20_000;
const SEED: u64 = 4242;
/// In no generated range (TEST-NET-2): an entry whose address never appears.
const UNSEEN: &str = "198.51.100.77/32";

/// One /32 entry per offender of the run, at most one per /24 (a neighbour's rotation would
/// otherwise be read as this one's), plus the unseen entry, in the ledger's sorted order.
fn offenders(truth: &Truth) -> Vec<IpNet> {
    let mut nets = BTreeSet::new();
    let mut slash24 = BTreeSet::new();
    for a in &truth.actors {
        let offending = matches!(
            a.class,
            ActorClass::FakeCrawler
                | ActorClass::Scraper
                | ActorClass::PathScanner
                | ActorClass::CredentialStuffer
        );
        for ip in a.ips.iter().filter(|_| offending) {
            let net: IpNet = format!("{ip}/{}", if ip.contains(':') { 128 } else { 32 })
                .parse()
                .unwrap();
            let around = IpNet::new(net.addr(), if ip.contains(':') { 64 } else { 24 })
                .unwrap()
                .trunc();
            if slash24.insert(around) {
                nets.insert(net);
            }
        }
    }
    nets.insert(UNSEEN.parse().unwrap());
    nets.into_iter().collect()
}

fn ledger(nets: &[IpNet]) -> String {
    let mut out = String::new();
    for net in nets {
        writeln!(
            out,
            "[[entry]]\ncidr = \"{net}\"\ngroup = \"blocklist\"\npolicy = \"{POLICY}\"\nreason = \"offender\"\n\
             first_seen = \"{START}\"\nlast_seen = \"{START}\"\nadded = \"{ADDED}\"\nexpires = \"{EXPIRES}\"\nstrikes = 1\n"
        )
        .unwrap();
    }
    out
}

/// The verdict the report must give an entry, from the truth. The verdicts are defined over 24 h
/// windows (docs/report.md), so when an offender acted matters as much as what it did: its first
/// answer can come late in the run (its own next visit after `added`).
fn expected(truth: &Truth, cidr: &str) -> &'static str {
    const DAY: i64 = 24 * 3_600_000;
    let e = truth
        .blocks
        .as_ref()
        .unwrap()
        .entries
        .iter()
        .find(|e| e.cidr.to_string() == cidr)
        .unwrap();
    let has = |o: Outcome| e.offenders.iter().any(|x| x.outcome == o);
    if e.offenders.is_empty() {
        return "no_data";
    }
    if !e.enforced {
        return "not_enforced";
    }
    let ms = |t: jiff::Timestamp| t.as_millisecond();
    let first = e
        .offenders
        .iter()
        .filter_map(|o| o.first_answer)
        .map(ms)
        .min()
        .unwrap();
    let last = e
        .offenders
        .iter()
        .map(|o| ms(o.last_request))
        .max()
        .unwrap();
    let end = ms(truth.end);
    // A rotation shows once the new address sent something inside the run.
    let rotated = e
        .offenders
        .iter()
        .filter_map(|o| o.rotated_to.as_ref())
        .any(|ip| truth.actors.iter().any(|a| a.ips.contains(ip)));
    if has(Outcome::Persisting) && last >= first + DAY {
        "persisting"
    } else if rotated {
        "rotated"
    } else if !has(Outcome::Persisting) && end >= last + DAY {
        "stopped"
    } else {
        "no_data"
    }
}

/// Generates the run without blocks (its offenders, as `propose` would find them), writes a ledger
/// of them (the first not enforced), and generates the run again enforcing it with `extra`
/// arguments, into `d/gen`; the ledger's entries and the truth.
fn generate_blocked(d: &std::path::Path, client_asn: bool) -> (Vec<IpNet>, Truth) {
    let opts = GenerateOptions {
        seed: SEED,
        start: START.parse().unwrap(),
        duration_minutes: MINUTES,
        target_records: RECORDS,
        client_asn,
        ..GenerateOptions::default()
    };
    let plain = generate(&opts, &d.join("plain")).unwrap().truth;
    let nets = offenders(&plain);
    assert!(nets.len() >= 12, "{nets:?}");
    std::fs::create_dir_all(d.join("state")).unwrap();
    let ledger_path = d.join("state/blocklist.toml");
    std::fs::write(&ledger_path, ledger(&nets)).unwrap();
    let not_enforced = nets[0].to_string();

    let mut cmd = Command::cargo_bin("waftune").unwrap();
    cmd.arg("generate")
        .arg("--out")
        .arg(d.join("gen"))
        .args(["--records", &RECORDS.to_string()])
        .args(["--minutes", &MINUTES.to_string()])
        .args(["--seed", &SEED.to_string(), "--start", START])
        .arg("--ledger")
        .arg(&ledger_path)
        .args(["--block-rule", "waftune-blocklist"])
        .args(["--not-enforced", &not_enforced]);
    if client_asn {
        cmd.arg("--client-asn");
    }
    run(&mut cmd);
    let truth: Truth =
        serde_json::from_slice(&std::fs::read(d.join("gen/truth.json")).unwrap()).unwrap();
    // The run before `added` is the same run.
    let blocks = truth.blocks.as_ref().expect("truth records the blocks");
    for (a, b) in plain.actors.iter().zip(&truth.actors) {
        assert_eq!(a.name, b.name);
        assert!(b.ips.iter().filter(|ip| !a.ips.contains(ip)).all(|ip| {
            blocks
                .entries
                .iter()
                .flat_map(|e| &e.offenders)
                .any(|o| o.rotated_to.as_ref() == Some(ip) || o.rotated_across.contains(ip))
        }));
    }
    std::fs::copy(root().join("examples/waftune.toml"), d.join("waftune.toml")).unwrap();
    std::fs::create_dir_all(d.join("policies")).unwrap();
    for f in std::fs::read_dir(root().join("examples/policies")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, d.join("policies").join(f.file_name().unwrap())).unwrap();
    }
    (nets, truth)
}

/// `waftune ARGS -c d/waftune.toml --logs d/gen/AWSLogs --now END` in `d`; its stdout.
fn waftune(d: &std::path::Path, truth: &Truth, args: &[&str]) -> String {
    run(Command::cargo_bin("waftune")
        .unwrap()
        .current_dir(d)
        .args(args)
        .arg("-c")
        .arg(d.join("waftune.toml"))
        .arg("--logs")
        .arg(d.join("gen/AWSLogs"))
        .args(["--now", &truth.end.to_string()])
        .env("LC_ALL", "C"))
}

#[test]
fn block_effect_verdicts_match_the_generated_truth() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (nets, truth) = generate_blocked(d, false);
    let blocks = truth.blocks.as_ref().expect("truth records the blocks");
    assert_eq!(blocks.rule, "waftune-blocklist");
    let outcomes: Vec<Outcome> = blocks
        .entries
        .iter()
        .flat_map(|e| e.offenders.iter().map(|o| o.outcome))
        .collect();
    for o in [
        Outcome::Stopped,
        Outcome::Persisting,
        Outcome::Rotated,
        Outcome::NotEnforced,
    ] {
        assert!(outcomes.contains(&o), "no {o:?} in {outcomes:?}");
    }
    let report = |extra: &[&str]| waftune(d, &truth, &[&["report"], extra].concat());
    let json = report(&["--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let b = &json["block_effect"];
    let rows = b["entries"].as_array().unwrap();
    assert_eq!(rows.len(), nets.len());
    let mut mismatches = Vec::new();
    for row in rows {
        let cidr = row["cidr"].as_str().unwrap();
        let want = expected(&truth, cidr);
        if row["verdict"] != want {
            mismatches.push(format!(
                "{cidr}: report {} ({}), truth {want}",
                row["verdict"], row["why"]
            ));
        }
        if want == "rotated" {
            let to = truth
                .blocks
                .as_ref()
                .unwrap()
                .entries
                .iter()
                .find(|e| e.cidr.to_string() == cidr)
                .unwrap()
                .offenders
                .iter()
                .filter_map(|o| o.rotated_to.clone())
                .collect::<Vec<_>>();
            assert_eq!(row["rotated_to"], serde_json::json!(to), "{cidr}");
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));

    let count = |v: &str| rows.iter().filter(|r| r["verdict"] == v).count() as u64;
    let (stopped, blocked) = (
        count("stopped"),
        count("stopped") + count("persisting") + count("rotated"),
    );
    assert_eq!(b["stopped"], stopped);
    assert_eq!(b["blocked"], blocked);
    assert_eq!(count("not_enforced"), 1);
    for v in ["stopped", "persisting", "rotated"] {
        assert!(count(v) >= 1, "no entry judged {v}");
    }
    assert!(count("no_data") >= 1, "the unseen entry");
    eprintln!(
        "{} entries: {stopped} stopped, {} persisting, {} rotated, {} not enforced, {} no data",
        rows.len(),
        count("persisting"),
        count("rotated"),
        count("not_enforced"),
        count("no_data")
    );
    let text = report(&[]);
    let headline = format!("{stopped} of {blocked} blocked clients stopped within 24 h");
    assert!(text.contains(&headline), "{headline} not in\n{text}");

    // `propose` escalates from the same verdicts: the persisting get another strike and a block
    // to `now` + 2 d (the policy's 1 d doubled), the rotated their /24 (/64) with the linked
    // addresses in the reason; the stopped are left alone.
    let propose = waftune(d, &truth, &["propose", "--dry-run", "--format", "json"]);
    let propose: serde_json::Value = serde_json::from_str(&propose).unwrap();
    let changes = propose["changes"].as_array().unwrap();
    let change = |kind: &str, cidr: &str| {
        changes
            .iter()
            .find(|c| c["kind"] == kind && c["cidr"] == cidr)
            .cloned()
    };
    let later = (truth.end + jiff::SignedDuration::from_hours(48)).to_string();
    let mut escalated = (0, 0);
    for row in rows {
        let cidr = row["cidr"].as_str().unwrap();
        let net: IpNet = cidr.parse().unwrap();
        let around = IpNet::new(net.addr(), if net.addr().is_ipv4() { 24 } else { 64 })
            .unwrap()
            .trunc()
            .to_string();
        match row["verdict"].as_str().unwrap() {
            "persisting" => {
                let c = change("extend", cidr).unwrap_or_else(|| panic!("{cidr} not extended"));
                assert_eq!(c["strikes"], 2, "{c}");
                assert_eq!(c["expires"], later.as_str(), "{c}");
                escalated.0 += 1;
            }
            "rotated" => {
                let c = change("add", &around).unwrap_or_else(|| panic!("{around} not proposed"));
                let reason = c["reason"].as_str().unwrap();
                assert!(reason.contains(&format!("rotated after the block of `{cidr}`")));
                for to in row["rotated_to"].as_array().unwrap() {
                    assert!(
                        reason.contains(&format!("`{}`", to.as_str().unwrap())),
                        "{reason}"
                    );
                }
                // One more than the entry's, which a new offence may have raised in this run.
                assert!(c["strikes"].as_u64().unwrap() >= 2, "{c}");
                escalated.1 += 1;
            }
            _ => {
                assert!(
                    change("add", &around).is_none(),
                    "{around} proposed for {cidr}"
                );
                let extended = change("extend", cidr);
                assert!(
                    extended
                        .is_none_or(|c| !c["reason"].as_str().unwrap().starts_with("persisting")),
                    "{cidr}"
                );
            }
        }
    }
    assert_eq!(
        escalated,
        (count("persisting"), count("rotated")),
        "every persisting and rotated entry escalated"
    );
}

/// With `clientAsn` logged and an ASN rule configured, a blocked offender that rotated across two
/// other /24s of its hosting range's ASN gets that ASN proposed (the check passes: no crawler or
/// home-country browser lives in the generator's hosting ranges); the plan shows it, and the
/// report's ledger lists it.
#[test]
fn a_campaign_rotating_across_its_asn_gets_the_asn_proposed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, truth) = generate_blocked(d, true);
    let config = std::fs::read_to_string(d.join("waftune.toml")).unwrap();
    std::fs::write(
        d.join("waftune.toml"),
        config.replace(
            "[guardrails]",
            "[[web_acl.asn_rule]]\nname = \"waftune-asn\"\nlist = \"hosting\"\npriority = 4\naction = \"block\"\n\n[guardrails]",
        ),
    )
    .unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&waftune(d, &truth, &["report", "--format", "json"])).unwrap();
    let rows = report["block_effect"]["entries"].as_array().unwrap();
    // The entries judged rotated whose offender moved across its ASN, by ASN.
    let blocks = truth.blocks.as_ref().unwrap();
    let mut across: BTreeSet<String> = BTreeSet::new();
    let mut linked: Vec<String> = Vec::new();
    for row in rows.iter().filter(|r| r["verdict"] == "rotated") {
        let e = blocks
            .entries
            .iter()
            .find(|e| e.cidr.to_string() == row["cidr"].as_str().unwrap())
            .unwrap();
        for o in e.offenders.iter().filter(|o| !o.rotated_across.is_empty()) {
            across.insert(format!("AS{}", row["asn"].as_u64().unwrap()));
            linked.extend(o.rotated_across.iter().cloned());
        }
    }
    assert!(!across.is_empty(), "no offender rotated across its ASN");

    let propose: serde_json::Value = serde_json::from_str(&waftune(
        d,
        &truth,
        &["propose", "--dry-run", "--format", "json"],
    ))
    .unwrap();
    let asn_changes = propose["asn_changes"].as_array().unwrap();
    let proposed: BTreeSet<String> = asn_changes
        .iter()
        .filter(|c| c["kind"] == "add")
        .map(|c| c["asn"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(proposed, across, "{asn_changes:#?}");
    eprintln!(
        "ASNs proposed: {proposed:?}; refused: {}",
        asn_changes.len() - proposed.len()
    );
    for c in asn_changes {
        let reason = c["reason"].as_str().unwrap();
        assert!(reason.contains(" networks of AS"), "{reason}");
        assert_eq!(c["list"], "hosting");
        if c["kind"] == "add" {
            assert!(
                reason.contains("0 verified crawler(s); 0 home-country browser(s)"),
                "{reason}"
            );
        } else {
            // The generator's shared ASN of every address outside the hosting ranges: where the
            // crawlers and the shoppers live. Refused, with who lives there.
            assert_eq!(
                (&c["kind"], &c["asn"]),
                (&"refused".into(), &"AS65551".into())
            );
            assert!(
                reason.contains("never proposed: it carries verified crawlers. AS65551: ")
                    && reason
                        .ends_with("its addresses outside the blocked /24 (/64) are not proposed"),
                "{reason}"
            );
        }
    }
    // The addresses the ASNs cover are not escalated one by one (a policy may still find them
    // on their own requests).
    let changes = propose["changes"].as_array().unwrap();
    for ip in &linked {
        let escalated = changes.iter().find(|c| {
            c["cidr"] == format!("{ip}/32")
                && c["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("rotated after the block")
        });
        assert!(escalated.is_none(), "{escalated:?} beside its ASN");
    }

    // Written to the ledger, the plan adds them to the ASN rule, and the report lists them.
    waftune(d, &truth, &["propose"]);
    let ledger = std::fs::read_to_string(d.join("state/blocklist.toml")).unwrap();
    assert_eq!(ledger.matches("[[asn]]").count(), across.len(), "{ledger}");
    let live = root().join("examples/live-snapshot.json");
    let plan = waftune(d, &truth, &["plan", "--live", live.to_str().unwrap()]);
    for asn in &across {
        assert!(plan.contains(&format!("+ {asn}")), "{asn} not in\n{plan}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&waftune(d, &truth, &["report", "--format", "json"])).unwrap();
    let listed: BTreeSet<String> = report["ledger"]["asns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["asn"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, across);
}
