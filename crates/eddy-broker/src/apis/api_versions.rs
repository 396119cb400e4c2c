//! ApiVersions: what Eddy serves. The header version and the
//! unsupported-version answer are handled in eddy-protocol.

use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

pub fn handle(_req: ApiVersionsRequest, _version: i16) -> ApiVersionsResponse {
    eddy_protocol::response::api_versions(eddy_protocol::codes::NONE)
}
