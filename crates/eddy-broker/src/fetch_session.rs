//! Incremental fetch sessions (KIP-227): the broker remembers the partitions
//! a client fetches so that later requests name only what changed, and
//! answers name only partitions with news.

use std::collections::HashMap;
use std::sync::Mutex;

use eddy_protocol::codes;

use crate::clock::now_ms;

/// Session epoch values with a meaning of their own.
pub const INITIAL_EPOCH: i32 = 0;
pub const FINAL_EPOCH: i32 = -1;

/// Identifies a partition in a session: by name, and by id for v13+.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub topic: String,
    pub topic_id: uuid::Uuid,
    pub partition: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
}

/// What the client last heard about a partition, to decide whether the
/// next incremental answer must mention it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Heard {
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub last_stable_offset: i64,
}

struct Session {
    epoch: i32,
    partitions: Vec<(Key, Wanted, Option<Heard>)>,
    last_used_ms: i64,
}

pub struct FetchSessions {
    slots_max: usize,
    inner: Mutex<(i32, HashMap<i32, Session>)>,
}

/// The partitions one fetch should read, and how to answer.
pub struct Plan {
    pub session_id: i32,
    pub incremental: bool,
    pub partitions: Vec<(Key, Wanted)>,
}

impl FetchSessions {
    pub fn new(slots_max: usize) -> FetchSessions {
        FetchSessions {
            slots_max,
            inner: Mutex::new((1, HashMap::new())),
        }
    }

    /// Resolves a request into the partitions to read. `requested` holds the
    /// partitions named in the request, `forgotten` those it drops.
    pub fn plan(
        &self,
        session_id: i32,
        epoch: i32,
        requested: Vec<(Key, Wanted)>,
        forgotten: Vec<Key>,
    ) -> Result<Plan, i16> {
        let mut inner = self.inner.lock().expect("fetch session lock");
        let (next_id, sessions) = &mut *inner;
        if epoch == FINAL_EPOCH || epoch == INITIAL_EPOCH {
            if session_id != 0 {
                sessions.remove(&session_id);
            }
            if epoch == FINAL_EPOCH || self.slots_max == 0 {
                return Ok(Plan {
                    session_id: 0,
                    incremental: false,
                    partitions: requested,
                });
            }
            if sessions.len() >= self.slots_max {
                // Evict the least recently used session.
                if let Some(&old) = sessions
                    .iter()
                    .min_by_key(|(_, s)| s.last_used_ms)
                    .map(|(id, _)| id)
                {
                    sessions.remove(&old);
                }
            }
            let id = *next_id;
            *next_id = if *next_id == i32::MAX {
                1
            } else {
                *next_id + 1
            };
            let partitions = requested
                .iter()
                .map(|(k, w)| (k.clone(), *w, None))
                .collect();
            sessions.insert(
                id,
                Session {
                    epoch: 1,
                    partitions,
                    last_used_ms: now_ms(),
                },
            );
            return Ok(Plan {
                session_id: id,
                incremental: false,
                partitions: requested,
            });
        }
        let session = sessions
            .get_mut(&session_id)
            .ok_or(codes::FETCH_SESSION_ID_NOT_FOUND)?;
        if session.epoch != epoch {
            return Err(codes::INVALID_FETCH_SESSION_EPOCH);
        }
        session.epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
        session.last_used_ms = now_ms();
        session
            .partitions
            .retain(|(k, _, _)| !forgotten.contains(k));
        for (key, wanted) in requested {
            match session.partitions.iter_mut().find(|(k, _, _)| *k == key) {
                Some(entry) => entry.1 = wanted,
                None => session.partitions.push((key, wanted, None)),
            }
        }
        let partitions = session
            .partitions
            .iter()
            .map(|(k, w, _)| (k.clone(), *w))
            .collect();
        Ok(Plan {
            session_id,
            incremental: true,
            partitions,
        })
    }

    /// Records what the answer told the client; returns whether an
    /// incremental answer must include this partition.
    pub fn heard(
        &self,
        session_id: i32,
        key: &Key,
        now: Heard,
        has_records: bool,
        error: i16,
    ) -> bool {
        let mut inner = self.inner.lock().expect("fetch session lock");
        let Some(session) = inner.1.get_mut(&session_id) else {
            return true;
        };
        let Some(entry) = session.partitions.iter_mut().find(|(k, _, _)| k == key) else {
            return true;
        };
        let changed = entry.2 != Some(now);
        entry.2 = Some(now);
        has_records || changed || error != codes::NONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: i32) -> Key {
        Key {
            topic: "t".into(),
            topic_id: uuid::Uuid::nil(),
            partition: p,
        }
    }
    fn want(o: i64) -> Wanted {
        Wanted {
            fetch_offset: o,
            partition_max_bytes: 1000,
        }
    }

    #[test]
    fn session_lifecycle() {
        let s = FetchSessions::new(10);
        let full = s
            .plan(
                0,
                INITIAL_EPOCH,
                vec![(key(0), want(0)), (key(1), want(0))],
                vec![],
            )
            .unwrap();
        assert!(full.session_id > 0 && !full.incremental);
        let id = full.session_id;
        assert_eq!(
            s.plan(id, 5, vec![], vec![]).err(),
            Some(codes::INVALID_FETCH_SESSION_EPOCH)
        );
        let inc = s
            .plan(id, 1, vec![(key(1), want(7))], vec![key(0)])
            .unwrap();
        assert!(inc.incremental);
        assert_eq!(inc.partitions, vec![(key(1), want(7))]);
        let heard = Heard {
            high_watermark: 7,
            log_start_offset: 0,
            last_stable_offset: 7,
        };
        assert!(s.heard(id, &key(1), heard, false, 0));
        assert!(!s.heard(id, &key(1), heard, false, 0));
        assert_eq!(
            s.plan(99, 1, vec![], vec![]).err(),
            Some(codes::FETCH_SESSION_ID_NOT_FOUND)
        );
        let closed = s.plan(id, FINAL_EPOCH, vec![], vec![]).unwrap();
        assert_eq!(closed.session_id, 0);
        assert_eq!(
            s.plan(id, 2, vec![], vec![]).err(),
            Some(codes::FETCH_SESSION_ID_NOT_FOUND)
        );
    }
}
