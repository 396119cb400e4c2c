//! A crash can leave the active segment cut anywhere. For every cut
//! position inside its last three batches, reopening must yield exactly
//! the whole batches before the cut, and appends must carry on from there.

mod common;

use std::fs::OpenOptions;
use std::path::Path;

use common::*;
use eddy_log::{Log, LogConfig};

/// Builds a log whose sealed segments are flushed (below the recovery
/// point) and whose active segment holds the last batches; crashes it.
fn crashed_log(dir: &Path, config: &LogConfig) -> Model {
    let mut log = Log::open(dir, config.clone(), 0).unwrap();
    let mut model = Model::default();
    let mut rng = Rng::new(7);
    for i in 0..40 {
        let count = 1 + rng.below(4) as usize;
        append(
            &mut log,
            &mut model,
            batch(count, rng.below(40) as usize, i),
            0,
        );
        if i == 30 {
            flush(&mut log); // recovery point = base of the active segment
        }
    }
    drop(log); // no close(): an unclean stop
    model
}

/// (position, offset) of each batch in the active segment file.
fn active_layout(model: &Model, active_base: i64) -> Vec<(u64, usize)> {
    let mut position = 0;
    let mut layout = Vec::new();
    for (i, b) in model.batches.iter().enumerate() {
        if model.header(i).base_offset >= active_base {
            layout.push((position, i));
            position += b.len() as u64;
        }
    }
    layout
}

fn check_torn_at(template: &Path, active: &Path, model: &Model, cut: u64, config: &LogConfig) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(template, dir.path());
    let active_copy = dir.path().join(active.file_name().unwrap());
    OpenOptions::new()
        .write(true)
        .open(&active_copy)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let active_base: i64 = active
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();

    let mut log = Log::open(dir.path(), config.clone(), 0).unwrap();
    // Whole batches of the active segment that end at or before the cut survive.
    let layout = active_layout(model, active_base);
    let kept_active = layout
        .iter()
        .filter(|&&(pos, i)| pos + model.batches[i].len() as u64 <= cut)
        .count();
    let kept = layout
        .first()
        .map_or(model.batches.len(), |&(_, first)| first)
        + kept_active;
    let mut expected = Model {
        batches: model.batches[..kept].to_vec(),
    };
    assert_eq!(log.log_end_offset(), expected.end_offset(), "cut at {cut}");
    assert_eq!(read_all(&log), expected.concat(0), "cut at {cut}");
    assert_eq!(
        std::fs::metadata(&active_copy).unwrap().len(),
        cut.min(
            layout
                .iter()
                .take(kept_active)
                .map(|&(_, i)| model.batches[i].len() as u64)
                .sum()
        ),
        "the torn bytes are cut from the file"
    );

    append(&mut log, &mut expected, batch(2, 5, 99), 0);
    assert_eq!(read_all(&log), expected.concat(0));
    if cut.is_multiple_of(13) {
        // A sample of cuts also crash again after the new append (every
        // one would add minutes of fsyncs on a real disk).
        drop(log);
        let log = Log::open(dir.path(), config.clone(), 0).unwrap();
        assert_eq!(
            read_all(&log),
            expected.concat(0),
            "after a second unclean reopen"
        );
    }
}

#[test]
fn recover_after_torn_tail() {
    let config = LogConfig {
        segment_bytes: 1500,
        index_interval_bytes: 100,
        ..small_config()
    };
    let template = tempfile::tempdir().unwrap();
    let model = crashed_log(template.path(), &config);
    let logs = segment_files(template.path(), "log");
    assert!(
        logs.len() >= 3,
        "want sealed segments too, got {}",
        logs.len()
    );
    let active = logs.last().unwrap().clone();
    let active_bytes = std::fs::metadata(&active).unwrap().len();
    let active_base: i64 = active
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let layout = active_layout(&model, active_base);
    assert!(
        layout.len() >= 4,
        "want at least 4 batches in the active segment"
    );
    let from = layout[layout.len() - 3].0;
    for cut in from..=active_bytes {
        check_torn_at(template.path(), &active, &model, cut, &config);
    }
}

#[test]
fn recover_without_any_checkpoint_scans_everything() {
    let config = small_config();
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config.clone(), 0).unwrap();
    let mut model = Model::default();
    for i in 0..30 {
        append(&mut log, &mut model, batch(3, 20, i), 0);
    }
    drop(log);
    assert!(!dir.path().join("recovery-point").exists());
    // Tear the second segment: everything after it goes too.
    let logs = segment_files(dir.path(), "log");
    assert!(logs.len() > 3);
    let torn = std::fs::metadata(&logs[1]).unwrap().len() - 1;
    OpenOptions::new()
        .write(true)
        .open(&logs[1])
        .unwrap()
        .set_len(torn)
        .unwrap();
    let log = Log::open(dir.path(), config, 0).unwrap();
    // The log ends where the torn (last) batch of the second segment began;
    // the later segments are deleted.
    let third_base: i64 = logs[2]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let survivors = (0..model.batches.len())
        .filter(|&i| model.header(i).base_offset < third_base)
        .count()
        - 1;
    assert_eq!(log.log_end_offset(), model.header(survivors).base_offset);
    assert_eq!(read_all(&log), model.batches[..survivors].concat());
    assert_eq!(log.segment_count(), 2);
    assert_eq!(segment_files(dir.path(), "log").len(), 2);
}
