//! Two processes on one state directory: the second cannot open a task the
//! first holds, and the lock dies with the process that held it.

mod support;

use eddy_store::{StateDirectory, StoreError, TaskId};

const TASK: TaskId = TaskId {
    subtopology: 0,
    partition: 3,
};

#[test]
fn a_task_held_by_another_process_is_refused_until_that_process_dies() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDirectory::new(dir.path(), "app").unwrap();
    let mut holder = support::spawn("child_holds_task_lock", dir.path());
    holder.wait_for("locked");

    let err = state.lock_task(TASK).unwrap_err();
    assert!(
        matches!(err, StoreError::TaskLocked { task, .. } if task == TASK),
        "{err}"
    );
    assert!(matches!(
        state.wipe_task(TASK),
        Err(StoreError::TaskLocked { .. })
    ));
    // Other tasks are free.
    state.lock_task(TaskId::new(0, 4)).unwrap();

    holder.kill();
    let task = state.lock_task(TASK).unwrap();
    assert_eq!(task.path(), dir.path().join("app/0_3"));
}

/// The other process of the test above; does nothing when run by hand.
#[test]
#[ignore = "run as a child process by the test above"]
fn child_holds_task_lock() {
    let Some(dir) = support::child_dir() else {
        return;
    };
    let state = StateDirectory::new(dir, "app").unwrap();
    let _task = state.lock_task(TASK).unwrap();
    support::report("locked");
    support::hold();
}
