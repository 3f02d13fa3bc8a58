//! Each client aggregated by one scan worker: records are handed to the worker that owns their client.
//!
//! Workers take whole files or chunks as they come, so a client that appears in many files used to
//! be aggregated by every worker that read one of them, and merged at the end: on a generated week,
//! 84% of the clients were held twice, 18 of the 59 MB the workers held at the end of the scan. Now
//! every client belongs to one worker (by a hash of its address): a worker parses every line it
//! reads and packs the records of the others' clients into batches for them ([`Packed`]).
//!
//! Busy clients (a flood, a crawler) stay with whichever worker reads them: sending them all to one
//! worker would leave the other idle. They are few, so holding them twice costs little. Which worker
//! aggregates a record never changes a result: the workers' parts are merged exactly as before.

use std::hash::BuildHasher;

use crossbeam_channel::{Receiver, Select, Sender, TrySendError};

use crate::log::fast::Index;
use crate::log::packed::Packed;
use crate::log::reader::parse_lines;
use crate::log::{InputFile, Malformed, RecordSink, ScanRecord};

/// Bytes of records packed for another worker before they are sent.
const BATCH_BYTES: usize = 256 << 10;
/// Batches on their way to one worker; a worker that finds them all untaken reads its own mail
/// until there is room, so memory stays bounded whichever worker is slower.
const IN_FLIGHT: usize = 4;
/// Slots of the table that finds busy clients. A client is busy once it has had its slot for
/// [`BUSY_RECORDS`] of its records and they are at least one in [`BUSY_SHARE`] of the records read
/// since it took the slot: a day's busiest clients (one record in 25) are busy after some 1,600
/// records, one with a record in every hundred is not.
const BUSY_SLOTS: usize = 4096;
const BUSY_RECORDS: u32 = 64;
const BUSY_SHARE: u64 = 64;

/// A slot of the busy table: a client's address hash, its records since it took the slot, and how
/// many records this worker had read then.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    hash: u64,
    records: u32,
    since: u64,
}

/// Records for one worker.
#[derive(Debug, Default)]
struct Batch {
    /// The worker that gathered it, which gets it back emptied.
    from: usize,
    records: Packed,
}

/// One worker's end of the routing: where its clients' records arrive, and where others' go.
pub struct Post<'a> {
    /// The scan's inputs, which name the files lines come from.
    files: &'a [InputFile],
    validate: bool,
    index: Index,
    mail: Mail,
}

/// A worker's channels to the others, apart from the parser's index so that parsing can route.
struct Mail {
    me: usize,
    inbox: Receiver<Batch>,
    /// By worker; `None` for this one.
    to: Vec<Option<Sender<Batch>>>,
    outbox: Vec<Batch>,
    /// This worker's batches, emptied by the workers that read them. Fresh buffers cost a page
    /// fault every 4 KiB: keeping batches read by whichever worker read them left the busier
    /// sender making new ones, a fifth of its batches and 4% of a scan in faults.
    empties: Receiver<Batch>,
    /// By worker; `None` for this one.
    back: Vec<Option<Sender<Batch>>>,
    /// By a slot of the address hash (see [`Slot`]).
    busy: Box<[Slot]>,
    /// Records read so far.
    records: u64,
}

/// The posts of `workers` workers reading `files`, connected to each other.
pub fn posts(workers: usize, files: &[InputFile], validate: bool) -> Vec<Post<'_>> {
    let (senders, inboxes): (Vec<_>, Vec<_>) = (0..workers)
        .map(|_| crossbeam_channel::bounded(IN_FLIGHT))
        .unzip();
    // Unbounded, so returning a batch never waits; a worker has at most `IN_FLIGHT + 2` batches
    // per other worker, as it makes one only when none has come back.
    let (returns, empties): (Vec<_>, Vec<_>) =
        (0..workers).map(|_| crossbeam_channel::unbounded()).unzip();
    let others = |me: usize, to: &[Sender<Batch>]| -> Vec<Option<Sender<Batch>>> {
        (0..workers)
            .map(|w| (w != me).then(|| to[w].clone()))
            .collect()
    };
    inboxes
        .into_iter()
        .zip(empties)
        .enumerate()
        .map(|(me, (inbox, empties))| Post {
            files,
            validate,
            index: Index::default(),
            mail: Mail {
                me,
                inbox,
                to: others(me, &senders),
                outbox: (0..workers).map(|_| Batch::default()).collect(),
                empties,
                back: others(me, &returns),
                busy: vec![Slot::default(); BUSY_SLOTS].into_boxed_slice(),
                records: 0,
            },
        })
        .collect()
}

/// A 64-bit hash of a client's address as the record writes it: spreads clients over workers and
/// over the busy table. The text is hashed rather than parsed (parsing cost a scan 1.4%); an
/// IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) hashes as its IPv4 form, which is the client it is
/// counted as. Two spellings of one IPv6 address would go to two workers, which only costs the
/// memory of holding that client twice: the workers' parts are merged exactly.
fn address_hash(text: &[u8]) -> u64 {
    const MAPPED: &[u8] = b"::ffff:";
    let text = match text.split_at_checked(MAPPED.len()) {
        Some((head, v4)) if head.eq_ignore_ascii_case(MAPPED) && !v4.contains(&b':') => v4,
        _ => text,
    };
    foldhash::fast::FixedState::with_seed(0).hash_one(text)
}

impl Post<'_> {
    /// Parses the lines of `data` (lines `first_line`.. of input `file_index`): the records of this
    /// worker's clients go into `sink`, the others' to their workers.
    pub fn parse(
        &mut self,
        data: &[u8],
        file_index: usize,
        first_line: u64,
        sink: &mut impl RecordSink,
    ) {
        let file = &self.files[file_index].name;
        let (index, validate) = (&mut self.index, self.validate);
        // Alone, every record is this worker's.
        if self.mail.to.len() == 1 {
            return parse_lines(index, data, file_index, file, first_line, validate, sink);
        }
        let mut router = Router {
            mail: &mut self.mail,
            sink,
        };
        parse_lines(
            index,
            data,
            file_index,
            file,
            first_line,
            validate,
            &mut router,
        );
    }

    /// Aggregates the records other workers sent, without waiting for more.
    pub fn read_mail(&mut self, sink: &mut impl RecordSink) {
        self.mail.read_mail(sink);
    }

    /// Sends what is gathered for the others, then aggregates what they send until all are done.
    pub fn finish(mut self, sink: &mut impl RecordSink) {
        let mail = &mut self.mail;
        for owner in 0..mail.to.len() {
            if !mail.outbox[owner].records.is_empty() {
                mail.send(owner, sink);
            }
        }
        // The others see this worker's channels close once it sends no more.
        mail.to.clear();
        while let Ok(batch) = mail.inbox.recv() {
            mail.read(batch, sink);
        }
    }
}

/// A worker's sink while it parses: its own clients' records go to `sink`, the others' are packed.
struct Router<'m, S> {
    mail: &'m mut Mail,
    sink: &'m mut S,
}

impl<S: RecordSink> RecordSink for Router<'_, S> {
    fn record(&mut self, r: &ScanRecord<'_>) {
        let mail = &mut *self.mail;
        let owner = mail.owner(r.http_request.client_ip.as_bytes());
        if owner == mail.me {
            return self.sink.record(r);
        }
        let records = &mut mail.outbox[owner].records;
        if records.is_empty() {
            records.reserve(BATCH_BYTES + BATCH_BYTES / 4);
        }
        records.push(r);
        if records.bytes() >= BATCH_BYTES {
            mail.send(owner, self.sink);
            // The others' mail too, or they wait for room while this worker reads a file.
            mail.read_mail(self.sink);
        }
    }

    /// Problems stay with the worker that read the line: any worker counts them the same.
    fn malformed(&mut self, problem: Malformed) {
        self.sink.malformed(problem);
    }
}

impl Mail {
    /// The worker that aggregates the records of the client at `address`.
    fn owner(&mut self, address: &[u8]) -> usize {
        let address = address_hash(address);
        self.records += 1;
        let slot = &mut self.busy[(address >> 52) as usize % BUSY_SLOTS];
        if slot.hash == address {
            slot.records = slot.records.saturating_add(1);
        } else {
            *slot = Slot {
                hash: address,
                records: 1,
                since: self.records,
            };
        }
        let share = self.records - slot.since + 1;
        if slot.records >= BUSY_RECORDS && u64::from(slot.records) * BUSY_SHARE >= share {
            return self.me;
        }
        // The high bits: the low ones of a product are poorly mixed.
        ((address >> 32) % self.to.len() as u64) as usize
    }

    fn read_mail(&mut self, sink: &mut impl RecordSink) {
        while let Ok(batch) = self.inbox.try_recv() {
            self.read(batch, sink);
        }
    }

    fn read(&mut self, mut batch: Batch, sink: &mut impl RecordSink) {
        for record in batch.records.records() {
            sink.record(&record);
        }
        batch.records.clear();
        if let Some(back) = &self.back[batch.from] {
            // A worker that is done no longer takes its batches back: this one is dropped.
            let _ = back.send(batch);
        }
    }

    /// Sends the batch gathered for `owner`. While its channel is full, this worker reads its own
    /// mail: two workers that wait on each other's channels without reading would never move.
    fn send(&mut self, owner: usize, sink: &mut impl RecordSink) {
        let tx = self.to[owner]
            .clone()
            .expect("no batch is gathered for this worker");
        let next = self.empties.try_recv().unwrap_or_default();
        let mut batch = std::mem::replace(&mut self.outbox[owner], next);
        batch.from = self.me;
        loop {
            batch = match tx.try_send(batch) {
                Ok(()) => return,
                Err(TrySendError::Full(batch)) => batch,
                Err(TrySendError::Disconnected(_)) => {
                    unreachable!("a worker reads its mail until every other is done")
                }
            };
            let mut select = Select::new();
            let sent = select.send(&tx);
            select.recv(&self.inbox);
            let op = select.select();
            if op.index() == sent {
                op.send(&tx, batch)
                    .expect("a worker reads its mail until every other is done");
                return;
            }
            match op.recv(&self.inbox) {
                Ok(mail) => self.read(mail, sink),
                // Every other worker is done sending: only this send is left to wait for.
                Err(_) => {
                    tx.send(batch)
                        .expect("a worker reads its mail until every other is done");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::input::Source;
    use crate::log::{Malformed, ScanRecord};
    use std::net::IpAddr;
    use std::sync::Arc;

    /// What a worker parsed: `(client, timestamp)` of each record, `(file, line)` of each problem.
    #[derive(Default)]
    struct Seen {
        records: Vec<(IpAddr, i64)>,
        problems: Vec<(usize, u64)>,
    }

    impl RecordSink for Seen {
        fn record(&mut self, r: &ScanRecord<'_>) {
            self.records.push((r.client_ip().unwrap(), r.timestamp));
        }
        fn malformed(&mut self, p: Malformed) {
            self.problems.push((p.file_index, p.line));
        }
    }

    fn line(ts: i64, ip: &str) -> String {
        format!(
            r#"{{"timestamp":{ts},"action":"ALLOW","terminatingRuleId":"Default_Action","httpRequest":{{"clientIp":"{ip}","country":"JP","uri":"/","httpMethod":"GET","headers":[]}}}}"#
        )
    }

    /// 100 clients, every 10th line from one busy client, and line `broken` not a record.
    fn lines(n: i64, broken: i64) -> String {
        let mut text = String::new();
        for i in 0..n {
            let ip = match i % 10 {
                0 => "203.0.113.9".to_string(),
                _ => format!("192.0.2.{}", i % 100),
            };
            text += &if i + 1 == broken {
                r#"{"httpRequest":{"clientIp":"192.0.2.33"},oops"#.to_string()
            } else {
                line(i, &ip)
            };
            text.push('\n');
        }
        text
    }

    /// Two workers reading at once, each sending the other far more than their channels hold.
    #[test]
    fn lines_reach_their_clients_worker_with_their_place() {
        let files: Vec<InputFile> = ["a", "b"]
            .map(|name| InputFile {
                source: Source::Stdin,
                name: Arc::from(name),
                size: 0,
            })
            .into();
        let texts = [lines(20_000, 7), lines(20_000, 19_000)];
        let mut seen = [Seen::default(), Seen::default()];
        std::thread::scope(|s| {
            let posts = posts(2, &files, false);
            for (w, (mut post, seen)) in posts.into_iter().zip(&mut seen).enumerate() {
                let text = &texts[w];
                s.spawn(move || {
                    // Worker 1's lines start at line 11 of its file.
                    post.parse(text.as_bytes(), w, [1, 11][w], seen);
                    post.finish(seen);
                });
            }
        });
        // Every record once; each broken line with its place, whoever parsed it.
        assert_eq!(seen[0].records.len() + seen[1].records.len(), 39_998);
        let mut problems = [seen[0].problems.clone(), seen[1].problems.clone()].concat();
        problems.sort();
        assert_eq!(problems, [(0, 7), (1, 19_010)]);
        // Each client in one worker but the busy one, which stays with the worker that read it.
        let busy: IpAddr = "203.0.113.9".parse().unwrap();
        let clients = |seen: &Seen| -> std::collections::BTreeSet<IpAddr> {
            seen.records
                .iter()
                .map(|r| r.0)
                .filter(|ip| *ip != busy)
                .collect()
        };
        let (zero, one) = (clients(&seen[0]), clients(&seen[1]));
        assert!(zero.is_disjoint(&one), "{:?}", zero.intersection(&one));
        assert!(!zero.is_empty() && !one.is_empty());
        for seen in &seen {
            let busy_here = seen.records.iter().filter(|r| r.0 == busy).count();
            assert!(busy_here >= 2_000 - BUSY_RECORDS as usize, "{busy_here}");
        }
    }

    #[test]
    fn an_ipv4_mapped_address_goes_where_its_ipv4_form_goes() {
        let hash = |ip: &str| address_hash(ip.as_bytes());
        for v4 in ["192.0.2.1", "198.51.100.77", "203.0.113.9"] {
            assert_eq!(hash(v4), hash(&format!("::ffff:{v4}")));
            assert_eq!(hash(v4), hash(&format!("::FFFF:{v4}")));
        }
        assert_ne!(hash("192.0.2.1"), hash("192.0.2.2"));
        // Only the mapped prefix is dropped.
        assert_ne!(hash("::ffff:1:2"), hash("1:2"));
    }
}
