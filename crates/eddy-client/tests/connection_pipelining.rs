//! A connection keeps several requests in flight and matches each response to its request by
//! correlation id, even when the broker answers out of order; a broker that does not answer
//! times the request out and retires the connection. Runs against a scripted fake broker, so
//! it needs no `EDDY_TEST_BOOTSTRAP`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use eddy_client::{Connection, ConnectionConfig, Error};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const METADATA_VERSION: i16 = 12;

async fn read_request(socket: &mut TcpStream) -> Option<(RequestHeader, Bytes)> {
    let size = socket.read_i32().await.ok()?;
    let mut body = vec![0; size as usize];
    socket.read_exact(&mut body).await.ok()?;
    let mut body = Bytes::from(body);
    let key = ApiKey::try_from(i16::from_be_bytes([body[0], body[1]])).ok()?;
    let version = i16::from_be_bytes([body[2], body[3]]);
    let header = RequestHeader::decode(&mut body, key.request_header_version(version)).ok()?;
    Some((header, body))
}

async fn respond<M: Encodable + HeaderVersion>(
    socket: &mut TcpStream,
    header: &RequestHeader,
    header_version: i16,
    body: &M,
) {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(header.correlation_id)
        .encode(&mut buf, header_version)
        .unwrap();
    body.encode(&mut buf, header.request_api_version).unwrap();
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    socket.write_all(&buf).await.unwrap();
}

fn api_versions() -> ApiVersionsResponse {
    let offered = [
        (ApiKey::ApiVersions, 0, 3),
        (ApiKey::Metadata, 0, METADATA_VERSION),
    ];
    ApiVersionsResponse::default().with_api_keys(
        offered
            .iter()
            .map(|&(key, min, max)| {
                ApiVersion::default()
                    .with_api_key(key as i16)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect(),
    )
}

/// A broker that negotiates, then reads `group` Metadata requests and answers them in reverse
/// order, echoing each request's topic name; with `group == 0` it never answers.
async fn fake_broker(group: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let (header, _) = read_request(&mut socket).await.unwrap();
        assert_eq!(header.request_api_key, ApiKey::ApiVersions as i16);
        respond(&mut socket, &header, 0, &api_versions()).await;
        loop {
            let mut held = Vec::new();
            while held.len() < group.max(1) {
                let Some((header, mut body)) = read_request(&mut socket).await else {
                    return;
                };
                let request = MetadataRequest::decode(&mut body, header.request_api_version);
                assert!(!body.has_remaining());
                held.push((header, request.unwrap()));
            }
            if group == 0 {
                continue;
            }
            for (header, request) in held.into_iter().rev() {
                let name = request.topics.unwrap()[0].name.clone();
                let response = MetadataResponse::default()
                    .with_topics(vec![MetadataResponseTopic::default().with_name(name)]);
                let header_version = MetadataResponse::header_version(header.request_api_version);
                respond(&mut socket, &header, header_version, &response).await;
            }
        }
    });
    addr
}

fn metadata_for(topic: &str) -> MetadataRequest {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::TopicName;
    let name = TopicName(topic.to_owned().into());
    MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(name))
    ]))
}

#[tokio::test]
async fn out_of_order_responses_reach_their_requests() {
    let addr = fake_broker(3).await;
    let conn = Connection::connect(&addr, ConnectionConfig::default())
        .await
        .unwrap();
    assert_eq!(conn.version(ApiKey::Metadata).unwrap(), METADATA_VERSION);
    assert!(conn.version(ApiKey::Produce).is_err(), "not offered");
    for round in 0..3 {
        let mut pending = Vec::new();
        for i in 0..3 {
            let request = metadata_for(&format!("t{round}-{i}"));
            pending.push(conn.dispatch(&request, METADATA_VERSION).await.unwrap());
        }
        for (i, p) in pending.into_iter().enumerate() {
            let response = p.wait().await.unwrap();
            let name = response.topics[0].name.as_ref().unwrap().0.to_string();
            assert_eq!(name, format!("t{round}-{i}"));
        }
    }
    conn.close().await;
    assert!(conn.is_broken());
}

#[tokio::test]
async fn a_silent_broker_times_out_and_retires_the_connection() {
    let addr = fake_broker(0).await;
    let config = ConnectionConfig {
        request_timeout_ms: 200,
        ..ConnectionConfig::default()
    };
    let conn = Connection::connect(&addr, config).await.unwrap();
    let err = conn.send(&metadata_for("t")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                timeout_ms: 200,
                ..
            }
        ),
        "{err}"
    );
    assert!(conn.is_broken());
}

#[tokio::test]
async fn in_flight_requests_are_bounded() {
    let addr = fake_broker(0).await;
    let config = ConnectionConfig {
        max_in_flight_requests: 2,
        ..ConnectionConfig::default()
    };
    let conn = Connection::connect(&addr, config).await.unwrap();
    let _a = conn.dispatch(&metadata_for("a"), METADATA_VERSION).await;
    let _b = conn.dispatch(&metadata_for("b"), METADATA_VERSION).await;
    let request = metadata_for("c");
    let third = conn.dispatch(&request, METADATA_VERSION);
    let waited = tokio::time::timeout(std::time::Duration::from_millis(200), third).await;
    assert!(waited.is_err(), "a third request must wait for a slot");
}
