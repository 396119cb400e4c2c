//! Reads the broker's CPU time from `GET /metrics` (Prometheus text format), so a benchmark
//! can report CPU-seconds per GB. A bare HTTP/1.1 GET over tokio: one request, one small
//! answer, not worth an HTTP client dependency.

use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The whole scrape must finish in this time.
const SCRAPE_TIMEOUT_MS: u64 = 2_000;
/// A metrics page larger than this is refused.
const RESPONSE_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// `process_cpu_seconds_total` of the broker whose HTTP listener is `addr` (`host:port`).
pub async fn cpu_seconds(addr: &str) -> anyhow::Result<f64> {
    let scrape = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect to {addr}"))?;
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        (&mut stream)
            .take(RESPONSE_BYTES_MAX)
            .read_to_end(&mut response)
            .await?;
        anyhow::Ok(response)
    };
    let response = tokio::time::timeout(Duration::from_millis(SCRAPE_TIMEOUT_MS), scrape)
        .await
        .with_context(|| format!("no answer from {addr} in {SCRAPE_TIMEOUT_MS} ms"))??;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200") {
        anyhow::bail!("GET http://{addr}/metrics answered {status:?}");
    }
    // A chunked body is fine too: chunk-size lines never look like the sample.
    parse_cpu_seconds(body).context("no process_cpu_seconds_total in /metrics")
}

/// The value of the `process_cpu_seconds_total` sample in a Prometheus text page.
pub fn parse_cpu_seconds(page: &str) -> Option<f64> {
    page.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let rest = line.strip_prefix("process_cpu_seconds_total")?;
            // Either labels or whitespace must follow the name, not a longer name.
            let rest = match rest.strip_prefix('{') {
                Some(labelled) => &labelled[labelled.find('}')? + 1..],
                None if rest.starts_with(char::is_whitespace) => rest,
                None => return None,
            };
            rest.split_whitespace().next()?.parse().ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cpu_sample() {
        let page = "# HELP process_cpu_seconds_total CPU time\n\
                    # TYPE process_cpu_seconds_total counter\n\
                    process_cpu_seconds_total_extra 9\n\
                    process_cpu_seconds_total 12.5\n\
                    process_resident_memory_bytes 1e6\n";
        assert_eq!(parse_cpu_seconds(page), Some(12.5));
        assert_eq!(
            parse_cpu_seconds("process_cpu_seconds_total{pid=\"1\"} 3 1700000000\n"),
            Some(3.0)
        );
        assert_eq!(parse_cpu_seconds("up 1\n"), None);
        assert_eq!(parse_cpu_seconds("process_cpu_seconds_total nan?\n"), None);
    }
}
