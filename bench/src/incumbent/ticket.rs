//! Duende's protected authentication ticket (the `Data` column) as the bench makes it: the
//! session's client list (the ticket's `client_list` property, which `GetSessionsAsync` reads to
//! know whom to notify) followed by random bytes, base64 as a whole. Duende unprotects (decrypts)
//! each ticket before it reads the list; that is not modelled, in Duende's favour.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Bytes of a ticket (before base64), as large as Duende's typically are.
pub const TICKET_BYTES: usize = 540;

/// A ticket naming `client_ids`, padded with `random` (at least [`TICKET_BYTES`] long) to
/// [`TICKET_BYTES`].
pub fn encode(client_ids: &[String], random: &[u8]) -> String {
    let mut bytes = serde_json::to_vec(client_ids).unwrap_or_default();
    bytes.push(0);
    let pad = TICKET_BYTES.saturating_sub(bytes.len());
    bytes.extend_from_slice(&random[..pad.min(random.len())]);
    STANDARD.encode(bytes)
}

/// The client list of a ticket [`encode`] made.
pub fn client_ids(data: &str) -> Result<Vec<String>, String> {
    let bytes = STANDARD.decode(data).map_err(|e| format!("ticket: {e}"))?;
    let end = bytes
        .iter()
        .position(|&b| b == 0)
        .ok_or("ticket without a client list")?;
    serde_json::from_slice(&bytes[..end]).map_err(|e| format!("ticket's client list: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_carry_their_client_list() {
        let clients = vec!["crm".to_owned(), "wiki".to_owned()];
        let ticket = encode(&clients, &[0xAB; TICKET_BYTES]);
        assert_eq!(STANDARD.decode(&ticket).unwrap().len(), TICKET_BYTES);
        assert_eq!(client_ids(&ticket).unwrap(), clients);
        assert!(client_ids(&STANDARD.encode([1u8; 8])).is_err());
    }
}
