//! ApiVersions: what Eddy serves. The header version and the
//! unsupported-version answer are handled in eddy-protocol.
//!
//! From v3 the response also carries features (KIP-584): Eddy finalizes
//! `transaction.version` = 2, so clients that know Transactions V2
//! (KIP-890 part 2) use it.

use kafka_protocol::messages::api_versions_response::{FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use super::text;

/// The feature and its level: Transactions V2 from the start.
const TRANSACTION_VERSION: &str = "transaction.version";
const TRANSACTION_VERSION_LEVEL: i16 = 2;
/// The features' epoch: Eddy's finalized features never change at run time.
const FEATURES_EPOCH: i64 = 1;
/// The first ApiVersions version with features.
const FEATURES_FROM_VERSION: i16 = 3;

pub fn handle(_req: ApiVersionsRequest, version: i16) -> ApiVersionsResponse {
    let response = eddy_protocol::response::api_versions(eddy_protocol::codes::NONE);
    if version < FEATURES_FROM_VERSION {
        return response;
    }
    response
        .with_supported_features(vec![SupportedFeatureKey::default()
            .with_name(text(TRANSACTION_VERSION))
            .with_min_version(0)
            .with_max_version(TRANSACTION_VERSION_LEVEL)])
        .with_finalized_features_epoch(FEATURES_EPOCH)
        .with_finalized_features(vec![FinalizedFeatureKey::default()
            .with_name(text(TRANSACTION_VERSION))
            .with_min_version_level(TRANSACTION_VERSION_LEVEL)
            .with_max_version_level(TRANSACTION_VERSION_LEVEL)])
}
