//! A small HTTP/1.1 client (hyper) for the SQL REST API: `eddy sql` and `eddy bench sql`.
//! One keep-alive connection; bodies read whole or line by line as they stream.

use anyhow::{anyhow, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value as Json;

pub struct HttpClient {
    addr: String,
    sender: SendRequest<Full<Bytes>>,
}

/// `http://host:port` or `host:port` → `host:port`.
pub fn authority(server: &str) -> String {
    server
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

impl HttpClient {
    pub async fn connect(server: &str) -> anyhow::Result<HttpClient> {
        let addr = authority(server);
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .with_context(|| format!("cannot reach the SQL server at {addr} (is `eddy start` running, and is --server right?)"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(HttpClient { addr, sender })
    }

    /// POSTs `body` as JSON; the status and the response, streaming.
    pub async fn post(&mut self, path: &str, body: &Json) -> anyhow::Result<(u16, Lines)> {
        self.sender.ready().await.context("connection lost")?;
        let request = hyper::Request::post(path)
            .header(hyper::header::HOST, &self.addr)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        Ok((
            status,
            Lines {
                body: response.into_body(),
                buffer: Vec::new(),
                done: false,
            },
        ))
    }

    /// POSTs `body` and reads the whole response as JSON.
    pub async fn post_json(&mut self, path: &str, body: &Json) -> anyhow::Result<(u16, Json)> {
        let (status, mut lines) = self.post(path, body).await?;
        let bytes = lines.rest().await?;
        let json = serde_json::from_slice(&bytes).map_err(|e| {
            anyhow!(
                "the server answered {status} with something that is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })?;
        Ok((status, json))
    }
}

/// A response body, line by line as it arrives.
pub struct Lines {
    body: Incoming,
    buffer: Vec<u8>,
    done: bool,
}

impl Lines {
    /// The next line (without its newline); None at the end of the body.
    pub async fn next_line(&mut self) -> anyhow::Result<Option<String>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Ok(Some(String::from_utf8_lossy(&line[..end]).into_owned()));
            }
            if self.done {
                if self.buffer.is_empty() {
                    return Ok(None);
                }
                let line = String::from_utf8_lossy(&self.buffer).into_owned();
                self.buffer.clear();
                return Ok(Some(line));
            }
            match self.body.frame().await {
                Some(frame) => {
                    if let Ok(data) = frame?.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                None => self.done = true,
            }
        }
    }

    /// Everything left of the body.
    pub async fn rest(&mut self) -> anyhow::Result<Vec<u8>> {
        while !self.done {
            match self.body.frame().await {
                Some(frame) => {
                    if let Ok(data) = frame?.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                None => self.done = true,
            }
        }
        Ok(std::mem::take(&mut self.buffer))
    }
}
