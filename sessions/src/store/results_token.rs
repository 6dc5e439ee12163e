//! The opaque paging token: where a page starts and ends, bound to its query and signed, so a
//! tampered token or one reused with other filters is refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::keys::Sid;
use crate::error::{Result, SessionError};

const VERSION: u8 = 1;
const PAYLOAD_LEN: usize = 1 + 8 + 8 + 2 * (8 + 16);
const MAC_LEN: usize = 16;
/// Longest token text accepted before decoding.
const MAX_TOKEN_CHARS: usize = 256;

/// A position in a listing: the sort time and the sid that breaks ties.
pub type Position = (i64, Sid);

/// What a results token says about the page it was issued with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageCursor {
    /// 1-based page number.
    pub page: u64,
    pub first: Position,
    pub last: Position,
}

/// Signs and checks results tokens with a key kept in the store.
pub struct ResultsTokenCodec {
    key: [u8; 32],
}

impl ResultsTokenCodec {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    /// The token for a page of the query with this fingerprint.
    pub fn encode(&self, fingerprint: [u8; 8], cursor: &PageCursor) -> String {
        let mut buf = Vec::with_capacity(PAYLOAD_LEN + MAC_LEN);
        buf.push(VERSION);
        buf.extend_from_slice(&fingerprint);
        buf.extend_from_slice(&cursor.page.to_be_bytes());
        for (t, sid) in [cursor.first, cursor.last] {
            buf.extend_from_slice(&t.to_be_bytes());
            buf.extend_from_slice(&sid);
        }
        let mut mac = self.mac();
        mac.update(&buf);
        let tag = mac.finalize().into_bytes();
        buf.extend_from_slice(&tag[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(buf)
    }

    /// Checks a token's signature, then that it belongs to the query with this fingerprint.
    pub fn decode(&self, fingerprint: [u8; 8], token: &str) -> Result<PageCursor> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(SessionError::InvalidResultsToken);
        }
        let buf = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| SessionError::InvalidResultsToken)?;
        if buf.len() != PAYLOAD_LEN + MAC_LEN || buf[0] != VERSION {
            return Err(SessionError::InvalidResultsToken);
        }
        let (payload, tag) = buf.split_at(PAYLOAD_LEN);
        let mut mac = self.mac();
        mac.update(payload);
        mac.verify_truncated_left(tag)
            .map_err(|_| SessionError::InvalidResultsToken)?;
        if payload[1..9] != fingerprint {
            return Err(SessionError::ResultsTokenMismatch);
        }
        let u64_at = |i: usize| u64::from_be_bytes(payload[i..i + 8].try_into().expect("8 bytes"));
        let position_at = |i: usize| -> Position {
            let mut sid = [0u8; 16];
            sid.copy_from_slice(&payload[i + 8..i + 24]);
            (u64_at(i) as i64, sid)
        };
        Ok(PageCursor {
            page: u64_at(9),
            first: position_at(17),
            last: position_at(41),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_tamper_and_mismatch() {
        let codec = ResultsTokenCodec::new([5; 32]);
        let cursor = PageCursor {
            page: 7,
            first: (-3, [1; 16]),
            last: (99, [2; 16]),
        };
        let token = codec.encode([1; 8], &cursor);
        assert_eq!(codec.decode([1; 8], &token).unwrap(), cursor);
        assert_eq!(
            codec.decode([2; 8], &token),
            Err(SessionError::ResultsTokenMismatch)
        );

        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[12] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(
            codec.decode([1; 8], &tampered),
            Err(SessionError::InvalidResultsToken)
        );
        assert_eq!(
            codec.decode([1; 8], "not a token!"),
            Err(SessionError::InvalidResultsToken)
        );
        let other_key = ResultsTokenCodec::new([6; 32]);
        assert_eq!(
            other_key.decode([1; 8], &token),
            Err(SessionError::InvalidResultsToken)
        );
    }
}
