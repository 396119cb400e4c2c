//! `eddy group ...`: consumer group administration, with the commands, columns and
//! rules of Kafka's `kafka-consumer-groups` (list, describe, reset offsets, delete).
//!
//! Resetting offsets is planned first (sans-io: [`plan_offset`] from the committed
//! offset and the log's bounds), printed, and committed only with `--execute`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;

use anyhow::Context;
use eddy_client::group_admin::{GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP};
use eddy_client::{Admin, Error, GroupDescription, OffsetSpec};

use crate::BootstrapArgs;

#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// List consumer groups.
    List {
        /// Show each group's state too.
        #[arg(long)]
        state: bool,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Show a group's committed offsets and lag per partition, with the member consuming it.
    Describe {
        group: String,
        /// Show members instead: consumer id, host, client id, partition count.
        #[arg(long, conflicts_with = "state")]
        members: bool,
        /// Show the group's state, coordinator, assignor and member count instead.
        #[arg(long)]
        state: bool,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Plan (default) or apply (--execute) new committed offsets for an inactive group.
    ResetOffsets(ResetArgs),
    /// Delete groups that have no members, with their committed offsets.
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Delete a group's committed offsets of topics no member consumes.
    DeleteOffsets {
        group: String,
        /// TOPIC or TOPIC:P1,P2 (repeatable).
        #[arg(long = "topic", required = true, value_parser = parse_topic_spec)]
        topics: Vec<TopicSpec>,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
}

#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    group: String,
    /// TOPIC or TOPIC:P1,P2 (repeatable).
    #[arg(long = "topic", value_parser = parse_topic_spec, required_unless_present = "all_topics")]
    topics: Vec<TopicSpec>,
    /// Every topic the group has committed offsets for.
    #[arg(long, conflicts_with = "topics")]
    all_topics: bool,
    #[command(flatten)]
    to: ResetTo,
    /// Commit the new offsets (without it, only print them).
    #[arg(long, conflicts_with = "dry_run")]
    execute: bool,
    /// Only print the new offsets (the default).
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct ResetTo {
    /// The log start offset.
    #[arg(long)]
    to_earliest: bool,
    /// The log end offset.
    #[arg(long)]
    to_latest: bool,
    /// The first offset at or after a time, YYYY-MM-DDTHH:mm:SS[.sss][Z|±HH:MM] (UTC
    /// when no zone is given).
    #[arg(long, value_parser = parse_datetime_ms)]
    to_datetime: Option<i64>,
    /// This offset (kept within the log's bounds).
    #[arg(long, allow_hyphen_values = true)]
    to_offset: Option<i64>,
    /// The committed offset moved by N (negative: back), kept within the log's bounds.
    #[arg(long, allow_hyphen_values = true)]
    shift_by: Option<i64>,
}

/// Where a reset moves a partition's offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetSpec {
    Earliest,
    Latest,
    Datetime(i64),
    Offset(i64),
    ShiftBy(i64),
}

impl ResetTo {
    fn spec(&self) -> ResetSpec {
        match (self.to_datetime, self.to_offset, self.shift_by) {
            (Some(ms), _, _) => ResetSpec::Datetime(ms),
            (_, Some(o), _) => ResetSpec::Offset(o),
            (_, _, Some(n)) => ResetSpec::ShiftBy(n),
            _ if self.to_latest => ResetSpec::Latest,
            // clap requires exactly one of the group.
            _ => ResetSpec::Earliest,
        }
    }
}

/// A topic, and optionally some of its partitions (all when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub topic: String,
    pub partitions: Option<Vec<i32>>,
}

pub fn parse_topic_spec(s: &str) -> Result<TopicSpec, String> {
    let (topic, partitions) = match s.split_once(':') {
        None => (s, None),
        Some((t, ps)) => {
            let parsed: Result<Vec<i32>, _> = ps.split(',').map(|p| p.trim().parse()).collect();
            match parsed {
                Ok(v) if !v.is_empty() && v.iter().all(|p| *p >= 0) => (t, Some(v)),
                _ => return Err(format!("expected TOPIC or TOPIC:P1,P2, got {s:?}")),
            }
        }
    };
    if topic.is_empty() {
        return Err(format!("no topic name in {s:?}"));
    }
    Ok(TopicSpec {
        topic: topic.to_owned(),
        partitions,
    })
}

pub async fn run(command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::List { state, bootstrap } => {
            let admin = Admin::new(bootstrap.connect().await?);
            let groups = admin.list_groups().await?;
            if state {
                let rows = groups
                    .into_iter()
                    .map(|g| vec![g.group_id, g.state.unwrap_or_else(|| "-".into())])
                    .collect();
                print_table(&["GROUP", "STATE"], rows)?;
            } else {
                let mut out = std::io::stdout().lock();
                for g in groups {
                    writeln!(out, "{}", g.group_id)?;
                }
            }
        }
        GroupCommand::Describe {
            group,
            members,
            state,
            bootstrap,
        } => {
            let admin = Admin::new(bootstrap.connect().await?);
            let described = describe_or_explain(&admin, &group).await?;
            if state {
                describe_state(&admin, &described).await?;
            } else if members {
                describe_members(&described)?;
            } else {
                describe_offsets(&admin, &described).await?;
            }
        }
        GroupCommand::ResetOffsets(args) => reset_offsets(args).await?,
        GroupCommand::Delete { groups, bootstrap } => {
            let admin = Admin::new(bootstrap.connect().await?);
            delete_groups(&admin, &groups).await?;
        }
        GroupCommand::DeleteOffsets {
            group,
            topics,
            bootstrap,
        } => {
            let admin = Admin::new(bootstrap.connect().await?);
            delete_offsets(&admin, &group, &topics).await?;
        }
    }
    Ok(())
}

fn is_code(e: &Error, code: eddy_client::KafkaCode) -> bool {
    matches!(e, Error::Kafka { code: c, .. } if *c == code)
}

/// DescribeGroups, with an unknown group told as such.
async fn describe_or_explain(admin: &Admin, group: &str) -> anyhow::Result<GroupDescription> {
    match admin.describe_group(group).await {
        Ok(d) => Ok(d),
        Err(e) if is_code(&e, GROUP_ID_NOT_FOUND) => Err(unknown_group(group)),
        Err(e) => Err(e.into()),
    }
}

fn unknown_group(group: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "consumer group {group:?} does not exist\nhint: `eddy group list` shows the groups there are"
    )
}

/// One row of `describe`: a partition with its committed offset and consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartitionRow {
    topic: String,
    partition: i32,
    committed: Option<i64>,
    /// (consumer id, host, client id) of the member it is assigned to.
    member: Option<(String, String, String)>,
}

/// Partitions assigned to members or with a committed offset, sorted.
fn partition_rows(
    d: &GroupDescription,
    committed: &BTreeMap<(String, i32), i64>,
) -> Vec<PartitionRow> {
    let mut rows: BTreeMap<(String, i32), PartitionRow> = BTreeMap::new();
    for m in &d.members {
        let who = (m.member_id.clone(), m.host.clone(), m.client_id.clone());
        for (topic, partitions) in m.assignment.iter().flatten() {
            for &p in partitions {
                rows.insert(
                    (topic.clone(), p),
                    PartitionRow {
                        topic: topic.clone(),
                        partition: p,
                        committed: committed.get(&(topic.clone(), p)).copied(),
                        member: Some(who.clone()),
                    },
                );
            }
        }
    }
    for ((t, p), offset) in committed {
        rows.entry((t.clone(), *p)).or_insert_with(|| PartitionRow {
            topic: t.clone(),
            partition: *p,
            committed: Some(*offset),
            member: None,
        });
    }
    rows.into_values().collect()
}

async fn describe_offsets(admin: &Admin, d: &GroupDescription) -> anyhow::Result<()> {
    let committed: BTreeMap<(String, i32), i64> = admin
        .committed_offsets(&d.group_id, None)
        .await?
        .into_iter()
        .map(|o| ((o.topic, o.partition), o.offset))
        .collect();
    let rows = partition_rows(d, &committed);
    if d.members.is_empty() {
        eprintln!("Consumer group '{}' has no active members.", d.group_id);
    }
    let mut ends: HashMap<(String, i32), i64> = HashMap::new();
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for r in &rows {
        by_topic.entry(&r.topic).or_default().push(r.partition);
    }
    for (topic, partitions) in by_topic {
        // A committed offset can outlive its topic; its end is then unknown.
        let Ok(found) = admin
            .list_offsets(topic, &partitions, OffsetSpec::Latest)
            .await
        else {
            continue;
        };
        for (p, o) in found {
            if let Some(end) = o.offset {
                ends.insert((topic.to_owned(), p), end);
            }
        }
    }
    let dash = || "-".to_owned();
    let table = rows
        .into_iter()
        .map(|r| {
            let end = ends.get(&(r.topic.clone(), r.partition)).copied();
            let lag = match (r.committed, end) {
                (Some(c), Some(e)) => (e - c).max(0).to_string(),
                _ => dash(),
            };
            let (id, host, client) = r.member.unwrap_or_else(|| (dash(), dash(), dash()));
            vec![
                d.group_id.clone(),
                r.topic,
                r.partition.to_string(),
                r.committed.map_or_else(dash, |c| c.to_string()),
                end.map_or_else(dash, |e| e.to_string()),
                lag,
                id,
                host,
                client,
            ]
        })
        .collect();
    print_table(
        &[
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ],
        table,
    )
}

fn describe_members(d: &GroupDescription) -> anyhow::Result<()> {
    if d.members.is_empty() {
        eprintln!("Consumer group '{}' has no active members.", d.group_id);
    }
    let rows = d
        .members
        .iter()
        .map(|m| {
            let count: usize = m.assignment.iter().flatten().map(|(_, ps)| ps.len()).sum();
            vec![
                d.group_id.clone(),
                m.member_id.clone(),
                m.host.clone(),
                m.client_id.clone(),
                count.to_string(),
            ]
        })
        .collect();
    print_table(
        &["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"],
        rows,
    )
}

async fn describe_state(admin: &Admin, d: &GroupDescription) -> anyhow::Result<()> {
    let metadata = admin.client().metadata(Some(&[])).await?;
    let coordinator = metadata
        .brokers
        .iter()
        .find(|b| b.node_id == d.coordinator)
        .map_or_else(
            || format!("({})", d.coordinator),
            |b| format!("{} ({})", b.addr(), b.node_id),
        );
    let row = vec![
        d.group_id.clone(),
        coordinator,
        if d.protocol.is_empty() {
            "-".into()
        } else {
            d.protocol.clone()
        },
        d.state.clone(),
        d.members.len().to_string(),
    ];
    print_table(
        &[
            "GROUP",
            "COORDINATOR (ID)",
            "ASSIGNMENT-STRATEGY",
            "STATE",
            "#MEMBERS",
        ],
        vec![row],
    )
}

/// The new offset of one partition, following `kafka-consumer-groups`: explicit and
/// shifted offsets are kept within [earliest, latest]; a time past every record means
/// the end. `by_time` is the ListOffsets answer for [`ResetSpec::Datetime`].
pub fn plan_offset(
    spec: ResetSpec,
    committed: Option<i64>,
    earliest: i64,
    latest: i64,
    by_time: Option<i64>,
) -> Result<i64, String> {
    let clamp = |o: i64| o.clamp(earliest, latest.max(earliest));
    Ok(match spec {
        ResetSpec::Earliest => earliest,
        ResetSpec::Latest => latest,
        ResetSpec::Datetime(_) => by_time.map_or(latest, clamp),
        ResetSpec::Offset(o) => clamp(o),
        ResetSpec::ShiftBy(n) => match committed {
            Some(c) => clamp(c.saturating_add(n)),
            None => return Err("no committed offset to shift from".into()),
        },
    })
}

/// The (topic, partition)s a reset covers.
async fn reset_scope(
    admin: &Admin,
    args: &ResetArgs,
    committed: &BTreeMap<(String, i32), i64>,
) -> anyhow::Result<BTreeSet<(String, i32)>> {
    if args.all_topics {
        return Ok(committed.keys().cloned().collect());
    }
    let mut scope = BTreeSet::new();
    for spec in &args.topics {
        let topic = admin.client().topic(&spec.topic).await?;
        let all: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
        let wanted = spec.partitions.clone().unwrap_or_else(|| all.clone());
        for p in wanted {
            if !all.contains(&p) {
                anyhow::bail!(
                    "topic {:?} has no partition {p} (it has {})",
                    spec.topic,
                    all.len()
                );
            }
            scope.insert((spec.topic.clone(), p));
        }
    }
    Ok(scope)
}

/// The new offset of every partition in `scope`.
async fn reset_plan(
    admin: &Admin,
    spec: ResetSpec,
    scope: &BTreeSet<(String, i32)>,
    committed: &BTreeMap<(String, i32), i64>,
) -> anyhow::Result<Vec<(String, i32, i64)>> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in scope {
        by_topic.entry(t).or_default().push(*p);
    }
    let mut plan = Vec::new();
    for (topic, partitions) in by_topic {
        let earliest = admin
            .list_offsets(topic, &partitions, OffsetSpec::Earliest)
            .await?;
        let latest = admin
            .list_offsets(topic, &partitions, OffsetSpec::Latest)
            .await?;
        let by_time = match spec {
            ResetSpec::Datetime(ms) => Some(
                admin
                    .list_offsets(topic, &partitions, OffsetSpec::Timestamp(ms))
                    .await?,
            ),
            _ => None,
        };
        for p in partitions {
            let bound = |m: &HashMap<i32, eddy_client::ListedOffset>| {
                m.get(&p).and_then(|o| o.offset).unwrap_or(0)
            };
            let at_time = by_time
                .as_ref()
                .and_then(|m| m.get(&p))
                .and_then(|o| o.offset);
            let current = committed.get(&(topic.to_owned(), p)).copied();
            let new = plan_offset(spec, current, bound(&earliest), bound(&latest), at_time)
                .map_err(|e| anyhow::anyhow!("{topic}-{p}: {e}"))?;
            plan.push((topic.to_owned(), p, new));
        }
    }
    Ok(plan)
}

async fn reset_offsets(args: ResetArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.bootstrap.connect().await?);
    let group = &args.group;
    // Like Kafka, a group that does not exist yet may be given offsets.
    match admin.describe_group(group).await {
        Ok(d) if d.state != "Empty" => anyhow::bail!(
            "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.\nhint: stop the group's consumers first",
            d.state
        ),
        Ok(_) => {}
        Err(e) if is_code(&e, GROUP_ID_NOT_FOUND) => {}
        Err(e) => return Err(e.into()),
    }
    let committed: BTreeMap<(String, i32), i64> = admin
        .committed_offsets(group, None)
        .await?
        .into_iter()
        .map(|o| ((o.topic, o.partition), o.offset))
        .collect();
    let scope = reset_scope(&admin, &args, &committed).await?;
    if scope.is_empty() {
        anyhow::bail!("no partitions to reset\nhint: name them with --topic, or commit offsets before using --all-topics");
    }
    let plan = reset_plan(&admin, args.to.spec(), &scope, &committed).await?;
    if args.execute {
        admin
            .commit_group_offsets(group, &plan)
            .await
            .with_context(|| format!("reset offsets of group {group:?}"))?;
    } else {
        eprintln!("dry run: nothing was changed; add --execute to commit these offsets");
    }
    let rows = plan
        .into_iter()
        .map(|(t, p, o)| vec![group.clone(), t, p.to_string(), o.to_string()])
        .collect();
    print_table(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], rows)
}

async fn delete_groups(admin: &Admin, groups: &[String]) -> anyhow::Result<()> {
    let names: Vec<&str> = groups.iter().map(String::as_str).collect();
    let mut failed = Vec::new();
    for (group, outcome) in admin.delete_groups(&names).await? {
        match outcome {
            Ok(()) => println!("deleted group {group}"),
            Err(e) if is_code(&e, GROUP_ID_NOT_FOUND) => {
                failed.push(format!("consumer group {group:?} does not exist"))
            }
            Err(e) if is_code(&e, NON_EMPTY_GROUP) => failed.push(format!(
                "consumer group {group:?} has active members (NON_EMPTY_GROUP)"
            )),
            Err(e) => failed.push(e.to_string()),
        }
    }
    if failed.iter().any(|f| f.contains("NON_EMPTY_GROUP")) {
        anyhow::bail!(
            "{}\nhint: only groups without members can be deleted; stop their consumers first",
            failed.join("\n")
        );
    }
    if !failed.is_empty() {
        anyhow::bail!("{}", failed.join("\n"));
    }
    Ok(())
}

async fn delete_offsets(admin: &Admin, group: &str, topics: &[TopicSpec]) -> anyhow::Result<()> {
    let mut partitions = Vec::new();
    for spec in topics {
        match &spec.partitions {
            Some(ps) => partitions.extend(ps.iter().map(|p| (spec.topic.clone(), *p))),
            None => {
                let t = admin.client().topic(&spec.topic).await?;
                partitions.extend(
                    t.partitions
                        .iter()
                        .map(|p| (spec.topic.clone(), p.partition)),
                );
            }
        }
    }
    let results = match admin.delete_group_offsets(group, &partitions).await {
        Ok(r) => r,
        Err(e) if is_code(&e, GROUP_ID_NOT_FOUND) => return Err(unknown_group(group)),
        Err(e) if is_code(&e, NON_EMPTY_GROUP) => anyhow::bail!(
            "group {group:?} has active members whose subscriptions are unknown (NON_EMPTY_GROUP)\nhint: stop its consumers first"
        ),
        Err(e) => return Err(e.into()),
    };
    let failures = results.iter().filter(|(_, _, c)| !c.is_ok()).count();
    let rows = results
        .into_iter()
        .map(|(t, p, code)| {
            let status = if code.is_ok() {
                "Successful".to_owned()
            } else {
                code.name()
            };
            vec![t, p.to_string(), status]
        })
        .collect();
    print_table(&["TOPIC", "PARTITION", "STATUS"], rows)?;
    if failures > 0 {
        anyhow::bail!("{failures} offset(s) of group {group:?} were not deleted\nhint: GROUP_SUBSCRIBED_TO_TOPIC means a member consumes the topic; stop it first");
    }
    Ok(())
}

/// Prints left-aligned columns, each as wide as its widest cell.
fn print_table(headers: &[&str], rows: Vec<Vec<String>>) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join(" ").trim_end().to_owned()
    };
    writeln!(out, "{}", line(&mut headers.iter().copied()))?;
    for row in &rows {
        writeln!(out, "{}", line(&mut row.iter().map(String::as_str)))?;
    }
    Ok(())
}

/// `2026-11-22T10:00:00.000` (UTC), with optional fraction and `Z` / `±HH:MM`, as ms
/// since the epoch.
pub fn parse_datetime_ms(s: &str) -> Result<i64, String> {
    let bad = || format!("expected YYYY-MM-DDTHH:mm:SS[.sss][Z|±HH:MM], got {s:?}");
    let (date, rest) = s.split_once('T').ok_or_else(bad)?;
    let (time, offset_ms) = split_zone(rest).ok_or_else(bad)?;
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, da] = d.as_slice() else {
        return Err(bad());
    };
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let t: Vec<&str> = hms.split(':').collect();
    let [h, mi, sec] = t.as_slice() else {
        return Err(bad());
    };
    let num = |v: &str, lo: i64, hi: i64| -> Result<i64, String> {
        let n: i64 = v.parse().map_err(|_| bad())?;
        (lo..=hi).contains(&n).then_some(n).ok_or_else(bad)
    };
    let (y, mo, da) = (num(y, 1970, 9999)?, num(mo, 1, 12)?, num(da, 1, 31)?);
    let (h, mi, sec) = (num(h, 0, 23)?, num(mi, 0, 59)?, num(sec, 0, 59)?);
    let ms = match frac.len() {
        0 => 0,
        1..=3 => num(frac, 0, 999)? * 10i64.pow(3 - frac.len() as u32),
        _ => return Err(bad()),
    };
    let days = days_from_civil(y, mo, da);
    Ok(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + ms - offset_ms)
}

/// Splits `HH:mm:SS[.sss]` from a zone suffix; the zone's offset in ms (0 for none or Z).
fn split_zone(s: &str) -> Option<(&str, i64)> {
    if let Some(t) = s.strip_suffix('Z') {
        return Some((t, 0));
    }
    match s.rfind(['+', '-']) {
        None => Some((s, 0)),
        Some(i) => {
            let (t, zone) = s.split_at(i);
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (zh, zm) = zone[1..].split_once(':')?;
            let (zh, zm): (i64, i64) = (zh.parse().ok()?, zm.parse().ok()?);
            (zh <= 18 && zm < 60).then_some((t, sign * (zh * 60 + zm) * 60_000))
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_client::MemberDescription;

    #[test]
    fn datetimes_parse_to_epoch_ms() {
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:00.000"), Ok(0));
        assert_eq!(
            parse_datetime_ms("2026-11-22T10:00:00.000"),
            Ok(1_795_341_600_000)
        );
        assert_eq!(
            parse_datetime_ms("2026-11-22T10:00:00.5Z"),
            Ok(1_795_341_600_500)
        );
        assert_eq!(
            parse_datetime_ms("2026-11-22T12:00:00+02:00"),
            Ok(1_795_341_600_000)
        );
        assert_eq!(
            parse_datetime_ms("2000-02-29T00:00:00"),
            Ok(951_782_400_000)
        );
        for bad in [
            "2026-11-22",
            "2026-13-01T00:00:00",
            "x",
            "2026-11-22T10:00",
            "2026-11-22T10:00:00.1234",
        ] {
            assert!(parse_datetime_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn topic_specs_name_partitions_or_all() {
        assert_eq!(
            parse_topic_spec("orders:0,2"),
            Ok(TopicSpec {
                topic: "orders".into(),
                partitions: Some(vec![0, 2])
            })
        );
        assert_eq!(parse_topic_spec("orders").unwrap().partitions, None);
        assert!(parse_topic_spec("orders:").is_err());
        assert!(parse_topic_spec(":1").is_err());
        assert!(parse_topic_spec("orders:-1").is_err());
    }

    #[test]
    fn plans_follow_kafka_consumer_groups() {
        // committed 5 in a log holding offsets [2, 10).
        let plan = |spec, by_time| plan_offset(spec, Some(5), 2, 10, by_time).unwrap();
        assert_eq!(plan(ResetSpec::Earliest, None), 2);
        assert_eq!(plan(ResetSpec::Latest, None), 10);
        assert_eq!(plan(ResetSpec::Offset(7), None), 7);
        assert_eq!(plan(ResetSpec::Offset(0), None), 2, "below the log start");
        assert_eq!(plan(ResetSpec::Offset(99), None), 10, "past the end");
        assert_eq!(plan(ResetSpec::ShiftBy(-2), None), 3);
        assert_eq!(plan(ResetSpec::ShiftBy(-20), None), 2);
        assert_eq!(plan(ResetSpec::ShiftBy(20), None), 10);
        assert_eq!(plan(ResetSpec::Datetime(0), Some(4)), 4);
        assert_eq!(plan(ResetSpec::Datetime(0), None), 10, "after every record");
        assert!(plan_offset(ResetSpec::ShiftBy(1), None, 0, 3, None).is_err());
    }

    #[test]
    fn rows_cover_assigned_and_committed_partitions() {
        let d = GroupDescription {
            group_id: "g".into(),
            state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            coordinator: 1,
            members: vec![MemberDescription {
                member_id: "m".into(),
                instance_id: None,
                client_id: "c".into(),
                host: "/127.0.0.1".into(),
                assignment: Some(vec![("t".into(), vec![1, 0])]),
            }],
        };
        let committed = BTreeMap::from([(("t".to_string(), 1), 4), (("u".to_string(), 0), 9)]);
        let rows = partition_rows(&d, &committed);
        let summary: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.topic.as_str(),
                    r.partition,
                    r.committed,
                    r.member.is_some(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("t", 0, None, true),
                ("t", 1, Some(4), true),
                ("u", 0, Some(9), false)
            ]
        );
    }
}
