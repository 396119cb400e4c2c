//! kcat-style format strings for `eddy consume -f`: parsed once, rendered per record as raw
//! bytes (keys and values need not be UTF-8).
//!
//! | token | prints |
//! |---|---|
//! | `%k` / `%v` (or kcat's `%s`) | key / value, nothing when null |
//! | `%K` / `%S` | key / value length, -1 when null |
//! | `%t` `%p` `%o` | topic, partition, offset |
//! | `%T` | timestamp, ms since the epoch |
//! | `%h` | headers as `k=v,k2=v2` |
//! | `%%` | a percent sign |
//! | `\n` `\t` `\r` `\\` | newline, tab, carriage return, backslash |

use eddy_client::ConsumerRecord;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(Vec<u8>),
    Key,
    Value,
    KeyLen,
    ValueLen,
    Topic,
    Partition,
    Offset,
    Timestamp,
    Headers,
}

/// A parsed format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    tokens: Vec<Token>,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(spec: &str) -> Result<Format, String> {
        let mut tokens = Vec::new();
        let mut literal = Vec::new();
        let mut chars = spec.chars();
        while let Some(c) = chars.next() {
            let token = match c {
                '%' => match chars.next() {
                    Some('k') => Token::Key,
                    Some('v' | 's') => Token::Value,
                    Some('K') => Token::KeyLen,
                    Some('S') => Token::ValueLen,
                    Some('t') => Token::Topic,
                    Some('p') => Token::Partition,
                    Some('o') => Token::Offset,
                    Some('T') => Token::Timestamp,
                    Some('h') => Token::Headers,
                    Some('%') => {
                        literal.push(b'%');
                        continue;
                    }
                    Some(other) => return Err(format!("unknown format token %{other}")),
                    None => return Err("format ends with a lone %".into()),
                },
                '\\' => {
                    let escaped = match chars.next() {
                        Some('n') => b'\n',
                        Some('t') => b'\t',
                        Some('r') => b'\r',
                        Some('\\') => b'\\',
                        Some(other) => return Err(format!("unknown escape \\{other}")),
                        None => return Err("format ends with a lone \\".into()),
                    };
                    literal.push(escaped);
                    continue;
                }
                c => {
                    let mut utf8 = [0; 4];
                    literal.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                    continue;
                }
            };
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            tokens.push(token);
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Ok(Format { tokens })
    }
}

impl Format {
    /// Appends `record` rendered by this format to `out`.
    pub fn render(&self, record: &ConsumerRecord, out: &mut Vec<u8>) {
        use std::io::Write;
        let len = |b: &Option<bytes::Bytes>| b.as_ref().map_or(-1, |b| b.len() as i64);
        for token in &self.tokens {
            // Writing to a Vec cannot fail.
            let _ = match token {
                Token::Literal(bytes) => out.write_all(bytes),
                Token::Key => out.write_all(record.key.as_deref().unwrap_or_default()),
                Token::Value => out.write_all(record.value.as_deref().unwrap_or_default()),
                Token::KeyLen => write!(out, "{}", len(&record.key)),
                Token::ValueLen => write!(out, "{}", len(&record.value)),
                Token::Topic => out.write_all(record.topic.as_bytes()),
                Token::Partition => write!(out, "{}", record.partition),
                Token::Offset => write!(out, "{}", record.offset),
                Token::Timestamp => write!(out, "{}", record.timestamp_ms),
                Token::Headers => {
                    for (i, h) in record.headers.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(h.key.as_bytes());
                        out.push(b'=');
                        out.extend_from_slice(h.value.as_deref().unwrap_or_default());
                    }
                    Ok(())
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use eddy_client::{Header, TimestampType};

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            topic: "orders".into(),
            partition: 2,
            offset: 41,
            timestamp_ms: 1_700_000_000_123,
            timestamp_type: TimestampType::CreateTime,
            key: Some(Bytes::from_static(b"alice")),
            value: Some(Bytes::from_static(b"{\"qty\":3}")),
            headers: vec![
                Header {
                    key: "source".into(),
                    value: Some(Bytes::from_static(b"web")),
                },
                Header {
                    key: "trace".into(),
                    value: None,
                },
            ],
        }
    }

    fn render(spec: &str, record: &ConsumerRecord) -> String {
        let format: Format = spec.parse().unwrap();
        let mut out = Vec::new();
        format.render(record, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_token_renders() {
        let r = record();
        assert_eq!(render("%v\\n", &r), "{\"qty\":3}\n");
        assert_eq!(
            render("%t/%p@%o %T\\t%k=%s", &r),
            "orders/2@41 1700000000123\talice={\"qty\":3}"
        );
        assert_eq!(render("%K %S", &r), "5 9");
        assert_eq!(render("[%h]", &r), "[source=web,trace=]");
        assert_eq!(render("100%% \\\\ ünï", &r), "100% \\ ünï");
    }

    #[test]
    fn nulls_print_nothing_and_lengths_minus_one() {
        let r = ConsumerRecord {
            key: None,
            value: None,
            headers: vec![],
            ..record()
        };
        assert_eq!(render("<%k|%v|%K|%S|%h>", &r), "<||-1|-1|>");
    }

    #[test]
    fn bad_formats_are_refused() {
        assert!("%x".parse::<Format>().is_err());
        assert!("abc%".parse::<Format>().is_err());
        assert!("abc\\".parse::<Format>().is_err());
        assert!("\\q".parse::<Format>().is_err());
    }
}
