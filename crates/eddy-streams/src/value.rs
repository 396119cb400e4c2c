//! Type erasure between processors. The DSL is typed (`KStream<K, V>`), but a topology is a
//! graph of nodes of many types, instantiated once per task; between nodes a key or value
//! travels as a [`Value`]: a boxed `Any` that can be cloned (a record forwarded to several
//! children is cloned for all but the last) and taken back as its type.
//!
//! A wrong downcast is a bug in the DSL's wiring, not bad input (input bytes are decoded by
//! serdes, which return errors), so it panics with the types involved.

use std::any::{type_name, Any};
use std::fmt;

/// What the DSL can carry between nodes.
pub trait Data: Any + Send + Clone + fmt::Debug {}
impl<T: Any + Send + Clone + fmt::Debug> Data for T {}

trait Erased: Send {
    fn clone_box(&self) -> Box<dyn Erased>;
    fn as_any(&self) -> &dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
    fn type_name(&self) -> &'static str;
}

impl<T: Data> Erased for T {
    fn clone_box(&self) -> Box<dyn Erased> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
    fn type_name(&self) -> &'static str {
        type_name::<T>()
    }
}

/// A key or value of some [`Data`] type.
pub struct Value(Box<dyn Erased>);

impl Value {
    pub fn new<T: Data>(v: T) -> Value {
        Value(Box::new(v))
    }

    /// The value as `T`. Panics (a wiring bug) when it is another type.
    pub fn get<T: Data>(&self) -> &T {
        match self.0.as_any().downcast_ref::<T>() {
            Some(v) => v,
            None => wrong_type::<T>(self.0.type_name()),
        }
    }

    /// Takes the value out as `T`. Panics (a wiring bug) when it is another type.
    pub fn take<T: Data>(self) -> T {
        let found = self.0.type_name();
        match self.0.into_any().downcast::<T>() {
            Ok(v) => *v,
            Err(_) => wrong_type::<T>(found),
        }
    }
}

fn wrong_type<T>(found: &str) -> ! {
    panic!(
        "eddy-streams wiring bug: expected a {}, found a {found}",
        type_name::<T>()
    )
}

impl Clone for Value {
    fn clone(&self) -> Value {
        Value(self.0.clone_box())
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_clones() {
        let v = Value::new(String::from("word"));
        let c = v.clone();
        assert_eq!(v.get::<String>(), "word");
        assert_eq!(c.take::<String>(), "word");
        assert_eq!(format!("{v:?}"), "\"word\"");
    }

    #[test]
    #[should_panic(expected = "expected a i64, found a alloc::string::String")]
    fn wrong_type_names_both() {
        Value::new(String::new()).take::<i64>();
    }
}
