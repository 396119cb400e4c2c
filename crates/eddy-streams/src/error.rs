//! The crate's error type.

use crate::serdes::SerdeError;

#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    #[error(transparent)]
    Serde(Box<SerdeError>),
    #[error("state store {store:?}: {source}")]
    Store {
        store: String,
        #[source]
        source: Box<eddy_store::StoreError>,
    },
    /// Boxed: the client's error is large, and every processor call returns this type.
    #[error(transparent)]
    Client(Box<eddy_client::Error>),
    /// A processor failed on a record (an error it returned, or a panic caught around it).
    #[error("processor {node:?} failed: {message}")]
    Processing { node: String, message: String },
    /// The topology or the configuration cannot work; says what to change.
    #[error("invalid topology or configuration: {0}")]
    Config(String),
    #[error("no state store {store:?} is connected to processor {node:?}\nhint: name the store when adding the processor (connected stores)")]
    UnknownStore { store: String, node: String },
    /// A processing or deserialization handler said to stop.
    #[error("task {task} stopped: {cause}")]
    TaskFailed { task: String, cause: String },
    #[error("the application is not running")]
    NotRunning,
    /// An interactive query of a store that does not exist or is of another kind (Kafka's
    /// `InvalidStateStoreException`).
    #[error("{0}")]
    InvalidStateStore(String),
}

pub type Result<T, E = StreamsError> = std::result::Result<T, E>;

impl StreamsError {
    pub(crate) fn store(store: &str, source: eddy_store::StoreError) -> StreamsError {
        StreamsError::Store {
            store: store.to_owned(),
            source: Box::new(source),
        }
    }
}

impl From<eddy_client::Error> for StreamsError {
    fn from(e: eddy_client::Error) -> Self {
        StreamsError::Client(Box::new(e))
    }
}

impl From<SerdeError> for StreamsError {
    fn from(e: SerdeError) -> Self {
        StreamsError::Serde(Box::new(e))
    }
}
