use super::*;
use crate::checkpoint::ChangelogPartition;

const EOS: ProcessingGuarantee = ProcessingGuarantee::ExactlyOnce;
const ALOS: ProcessingGuarantee = ProcessingGuarantee::AtLeastOnce;

fn state() -> (tempfile::TempDir, StateDirectory) {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDirectory::new(dir.path(), "my-app").unwrap();
    (dir, state)
}

fn checkpoint(offset: i64) -> Checkpoint {
    Checkpoint::from([(
        ChangelogPartition::new("my-app-counts-changelog", 3),
        offset,
    )])
}

/// Stands in for a persistent store's files.
fn fake_store(task: &TaskDirectory) -> PathBuf {
    let dir = task.store_dir("counts").unwrap();
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("data"), b"x").unwrap();
    dir
}

#[test]
fn layout_is_kafka_streams() {
    let (dir, state) = state();
    let task = state.lock_task(TaskId::new(0, 3)).unwrap();
    assert_eq!(task.path(), dir.path().join("my-app").join("0_3"));
    assert!(task.path().join(".lock").is_file());
    assert_eq!(
        task.store_dir("counts").unwrap(),
        task.path().join("fjall/counts")
    );
    task.write_checkpoint(&checkpoint(7)).unwrap();
    assert!(task.path().join(".checkpoint").is_file());
    assert!(task.store_dir("../escape").is_err());
    assert!(StateDirectory::new(dir.path(), "../app").is_err());
}

#[test]
fn task_ids_print_and_parse_as_kafka_does() {
    assert_eq!(TaskId::new(0, 3).to_string(), "0_3");
    assert_eq!("12_345".parse::<TaskId>().unwrap(), TaskId::new(12, 345));
    for bad in [
        "",
        "0",
        "0_",
        "_3",
        "a_3",
        "0_3_1",
        "-1_3",
        "+1_3",
        "0_99999999999",
    ] {
        assert!(bad.parse::<TaskId>().is_err(), "{bad:?}");
    }
}

#[test]
fn a_second_lock_in_the_same_process_is_refused_until_released() {
    let (_dir, state) = state();
    let task = TaskId::new(1, 0);
    let held = state.lock_task(task).unwrap();
    let err = state.lock_task(task).unwrap_err();
    assert!(
        matches!(err, StoreError::TaskLocked { task: t, .. } if t == task),
        "{err}"
    );
    assert!(err.to_string().contains("task 1_0 is locked"), "{err}");
    assert!(matches!(
        state.wipe_task(task),
        Err(StoreError::TaskLocked { .. })
    ));
    // Another task is independent.
    state.lock_task(TaskId::new(1, 1)).unwrap();
    drop(held);
    state.lock_task(task).unwrap();
}

#[test]
fn tasks_lists_task_directories_only() {
    let (_dir, state) = state();
    for task in [TaskId::new(1, 0), TaskId::new(0, 10), TaskId::new(0, 2)] {
        state.lock_task(task).unwrap();
    }
    fs::create_dir(state.path().join("not-a-task")).unwrap();
    fs::write(state.path().join("0_7"), b"a file, not a task").unwrap();
    let expected = [TaskId::new(0, 2), TaskId::new(0, 10), TaskId::new(1, 0)];
    assert_eq!(state.tasks().unwrap(), expected);
}

#[test]
fn wipe_keeps_only_the_lock() {
    let (_dir, state) = state();
    let task = state.lock_task(TaskId::new(0, 0)).unwrap();
    let store = fake_store(&task);
    task.write_checkpoint(&checkpoint(1)).unwrap();
    fs::write(task.path().join("stray"), b"").unwrap();
    task.wipe().unwrap();
    let left: Vec<_> = fs::read_dir(task.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [".lock"]);
    assert!(!store.exists());
    // Still locked: the lock file was kept open and in place.
    assert!(matches!(
        state.lock_task(TaskId::new(0, 0)),
        Err(StoreError::TaskLocked { .. })
    ));
    drop(task);
    fake_store(&state.lock_task(TaskId::new(0, 0)).unwrap());
    state.wipe_task(TaskId::new(0, 0)).unwrap();
    assert!(!store.exists());
}

#[test]
fn at_least_once_checkpoints_every_commit_and_keeps_state_without_one() {
    let (_dir, state) = state();
    let task = state.lock_task(TaskId::new(0, 1)).unwrap();
    let store = fake_store(&task);
    let fresh = task.recover(ALOS).unwrap();
    assert_eq!(
        fresh,
        Recovery {
            checkpoint: Checkpoint::new(),
            wiped: false
        }
    );
    assert!(store.exists());
    task.begin_processing(ALOS).unwrap();
    task.committed(ALOS, &checkpoint(10)).unwrap();
    assert_eq!(task.read_checkpoint().unwrap(), Some(checkpoint(10)));
    task.committed(ALOS, &checkpoint(20)).unwrap();
    // A crash here: the next owner restores from the last commit's offsets.
    drop(task);
    let task = state.lock_task(TaskId::new(0, 1)).unwrap();
    assert_eq!(
        task.recover(ALOS).unwrap(),
        Recovery {
            checkpoint: checkpoint(20),
            wiped: false
        }
    );
}

#[test]
fn exactly_once_wipes_after_a_crash_and_restores_from_a_clean_close() {
    let (_dir, state) = state();
    let id = TaskId::new(0, 2);
    let task = state.lock_task(id).unwrap();
    let store = fake_store(&task);
    task.write_checkpoint(&checkpoint(5)).unwrap();
    // Start: the checkpoint is honoured, then deleted once processing starts.
    assert_eq!(
        task.recover(EOS).unwrap(),
        Recovery {
            checkpoint: checkpoint(5),
            wiped: false
        }
    );
    task.begin_processing(EOS).unwrap();
    assert_eq!(task.read_checkpoint().unwrap(), None);
    task.committed(EOS, &checkpoint(9)).unwrap();
    assert_eq!(task.read_checkpoint().unwrap(), None);
    // Crash (no clean close): the next start wipes.
    drop(task);
    let task = state.lock_task(id).unwrap();
    assert_eq!(
        task.recover(EOS).unwrap(),
        Recovery {
            checkpoint: Checkpoint::new(),
            wiped: true
        }
    );
    assert!(!store.exists());
    // Clean close: the next start keeps the stores and the offsets.
    fake_store(&task);
    task.begin_processing(EOS).unwrap();
    task.close_clean(&checkpoint(12)).unwrap();
    let task = state.lock_task(id).unwrap();
    assert_eq!(
        task.recover(EOS).unwrap(),
        Recovery {
            checkpoint: checkpoint(12),
            wiped: false
        }
    );
    assert!(store.exists());
}

#[test]
fn a_corrupt_checkpoint_counts_as_none() {
    let (_dir, state) = state();
    let task = state.lock_task(TaskId::new(0, 4)).unwrap();
    let store = fake_store(&task);
    fs::write(task.path().join(".checkpoint"), b"0\n1\ntorn").unwrap();
    assert!(matches!(
        task.read_checkpoint(),
        Err(StoreError::CorruptCheckpoint { .. })
    ));
    assert_eq!(
        task.recover(ALOS).unwrap(),
        Recovery {
            checkpoint: Checkpoint::new(),
            wiped: false
        }
    );
    assert!(store.exists());
    assert_eq!(
        task.recover(EOS).unwrap(),
        Recovery {
            checkpoint: Checkpoint::new(),
            wiped: true
        }
    );
    assert!(!store.exists());
    // Nothing left to wipe: an empty task directory is not "wiped".
    assert_eq!(
        task.recover(EOS).unwrap(),
        Recovery {
            checkpoint: Checkpoint::new(),
            wiped: false
        }
    );
}
