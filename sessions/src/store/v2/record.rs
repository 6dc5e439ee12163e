//! The compact session record of the v2 layout, and the interned strings it refers to.
//!
//! A record holds no sid and no creation time (its key does), times as varint offsets from the
//! creation time, the IP as 4 or 16 bytes when it is an address in canonical form, client ids and
//! the user agent as interned ids, and the SHA-256 of the token's secret.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::RwLock;

use super::super::keys::Sid;
use super::super::record::StoredSession;
use super::layout::InternKey;
use crate::error::{Result, SessionError};

const VERSION: u8 = 2;

const HAS_NAME: u8 = 1;
const IP_TEXT: u8 = 2;
const IP_V4: u8 = 4;
const IP_V6: u8 = 8;
const HAS_UA: u8 = 16;
const HAS_PROPS: u8 = 32;

/// Strings stored once and referred to by a number: client ids and user agents.
#[derive(Default)]
pub struct Interner {
    inner: RwLock<InternTable>,
}

#[derive(Default)]
struct InternTable {
    ids: HashMap<String, u32>,
    strings: Vec<String>,
}

impl Interner {
    /// Loads the interned strings of a tree.
    pub fn load(tree: &sled::Tree) -> Result<Self> {
        let mut table = InternTable::default();
        for item in tree.scan_prefix(InternKey::prefix()) {
            let (k, v) = item?;
            let InternKey { id } = InternKey::decode(&k)
                .ok_or_else(|| SessionError::Storage("bad intern key".into()))?;
            if id as usize != table.strings.len() {
                return Err(SessionError::Storage(format!(
                    "interned string {id} out of sequence"
                )));
            }
            let s = String::from_utf8(v.to_vec())
                .map_err(|_| SessionError::Storage("interned string is not UTF-8".into()))?;
            table.ids.insert(s.clone(), id);
            table.strings.push(s);
        }
        Ok(Interner {
            inner: RwLock::new(table),
        })
    }

    /// The id of a string, storing it first if it is new. The entry is written before the id is
    /// handed out, so any record that refers to it is written after it.
    pub fn intern(&self, tree: &sled::Tree, s: &str) -> Result<u32> {
        if let Some(id) = self.read().ids.get(s) {
            return Ok(*id);
        }
        let mut t = self
            .inner
            .write()
            .map_err(|_| SessionError::Storage("intern lock poisoned".into()))?;
        if let Some(id) = t.ids.get(s) {
            return Ok(*id);
        }
        let id = u32::try_from(t.strings.len())
            .map_err(|_| SessionError::Storage("interned strings exhausted".into()))?;
        tree.insert(InternKey { id }.encode(), s.as_bytes())?;
        t.ids.insert(s.to_owned(), id);
        t.strings.push(s.to_owned());
        Ok(id)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, InternTable> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Encodes a session's record. Its client ids and user agent must be interned already
/// ([`intern_all`]).
pub fn encode(s: &StoredSession, interner: &Interner) -> Vec<u8> {
    let table = interner.read();
    let mut out = Vec::with_capacity(64 + s.subject_id.len());
    out.push(VERSION);
    let mut flags = 0u8;
    if s.display_name.is_some() {
        flags |= HAS_NAME;
    }
    let ip = s.ip.as_deref().map(|ip| match ip.parse::<IpAddr>() {
        Ok(addr) if addr.to_string() == ip => match addr {
            IpAddr::V4(a) => (IP_V4, a.octets().to_vec()),
            IpAddr::V6(a) => (IP_V6, a.octets().to_vec()),
        },
        _ => (IP_TEXT, ip.as_bytes().to_vec()),
    });
    if let Some((f, _)) = &ip {
        flags |= f;
    }
    if s.user_agent.is_some() {
        flags |= HAS_UA;
    }
    if !s.properties.is_empty() {
        flags |= HAS_PROPS;
    }
    out.push(flags);
    for t in [s.last_access_ms, s.idle_expires_ms, s.expires_ms] {
        put_varint(&mut out, zigzag(t.wrapping_sub(s.created_ms)));
    }
    put_str(&mut out, &s.subject_id);
    if let Some(n) = &s.display_name {
        put_str(&mut out, n);
    }
    put_varint(&mut out, s.client_ids.len() as u64);
    for c in &s.client_ids {
        put_varint(&mut out, u64::from(table.ids[c.as_str()]));
    }
    match &ip {
        Some((IP_TEXT, b)) => put_bytes(&mut out, b),
        Some((_, b)) => out.extend_from_slice(b),
        None => {}
    }
    if let Some(ua) = &s.user_agent {
        put_varint(&mut out, u64::from(table.ids[ua.as_str()]));
    }
    if !s.properties.is_empty() {
        put_varint(&mut out, s.properties.len() as u64);
        for (k, v) in &s.properties {
            put_str(&mut out, k);
            put_str(&mut out, v);
        }
    }
    out.extend_from_slice(&s.token_hash);
    out
}

/// Interns a session's client ids and user agent.
pub fn intern_all(s: &StoredSession, interner: &Interner, tree: &sled::Tree) -> Result<()> {
    for c in &s.client_ids {
        interner.intern(tree, c)?;
    }
    if let Some(ua) = &s.user_agent {
        interner.intern(tree, ua)?;
    }
    Ok(())
}

/// Decodes the record stored under a key with this creation time and sid.
pub fn decode(created_ms: i64, sid: &Sid, v: &[u8], interner: &Interner) -> Result<StoredSession> {
    let corrupt = || SessionError::Storage("corrupt session record".into());
    let mut r = Reader { buf: v, at: 0 };
    if r.byte().ok_or_else(corrupt)? != VERSION {
        return Err(SessionError::Storage(
            "unknown session record version".into(),
        ));
    }
    let flags = r.byte().ok_or_else(corrupt)?;
    let mut times = [0i64; 3];
    for t in &mut times {
        *t = created_ms.wrapping_add(unzigzag(r.varint().ok_or_else(corrupt)?));
    }
    let subject_id = r.string().ok_or_else(corrupt)?;
    let display_name = if flags & HAS_NAME != 0 {
        Some(r.string().ok_or_else(corrupt)?)
    } else {
        None
    };
    let table = interner.read();
    let interned = |id: u64| -> Result<String> {
        table.strings.get(id as usize).cloned().ok_or_else(|| {
            SessionError::Storage(format!("session record names unknown interned string {id}"))
        })
    };
    let n = r.varint().ok_or_else(corrupt)?;
    let mut client_ids = Vec::with_capacity(n.min(64) as usize);
    for _ in 0..n {
        client_ids.push(interned(r.varint().ok_or_else(corrupt)?)?);
    }
    let ip = if flags & IP_TEXT != 0 {
        Some(String::from_utf8(r.bytes().ok_or_else(corrupt)?.to_vec()).map_err(|_| corrupt())?)
    } else if flags & IP_V4 != 0 {
        let b: [u8; 4] = r.take(4).ok_or_else(corrupt)?.try_into().expect("4");
        Some(std::net::Ipv4Addr::from(b).to_string())
    } else if flags & IP_V6 != 0 {
        let b: [u8; 16] = r.take(16).ok_or_else(corrupt)?.try_into().expect("16");
        Some(std::net::Ipv6Addr::from(b).to_string())
    } else {
        None
    };
    let user_agent = if flags & HAS_UA != 0 {
        Some(interned(r.varint().ok_or_else(corrupt)?)?)
    } else {
        None
    };
    let mut properties = std::collections::BTreeMap::new();
    if flags & HAS_PROPS != 0 {
        let n = r.varint().ok_or_else(corrupt)?;
        for _ in 0..n {
            let k = r.string().ok_or_else(corrupt)?;
            let v = r.string().ok_or_else(corrupt)?;
            properties.insert(k, v);
        }
    }
    let token_hash: [u8; 32] = r.take(32).ok_or_else(corrupt)?.try_into().expect("32");
    if r.at != v.len() {
        return Err(corrupt());
    }
    Ok(StoredSession {
        sid: *sid,
        subject_id,
        display_name,
        created_ms,
        last_access_ms: times[0],
        idle_expires_ms: times[1],
        expires_ms: times[2],
        client_ids,
        properties,
        ip,
        user_agent,
        token_hash,
    })
}

pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

/// Reads what the `put_*` functions wrote.
pub struct Reader<'a> {
    pub buf: &'a [u8],
    pub at: usize,
}

impl<'a> Reader<'a> {
    pub fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    pub fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        self.take(n)
    }

    pub fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }

    pub fn done(&self) -> bool {
        self.at == self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn records_round_trip_and_are_small() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let interner = Interner::default();
        let mut s = StoredSession {
            sid: [1; 16],
            subject_id: "user-123456".into(),
            display_name: Some("Alice Smith".into()),
            created_ms: 1_780_000_000_000,
            last_access_ms: 1_780_000_000_000,
            idle_expires_ms: 1_780_000_000_000 + 1_800_000,
            expires_ms: 1_780_000_000_000 + 28_800_000,
            client_ids: vec!["portal".into(), "mail".into()],
            properties: BTreeMap::new(),
            ip: Some("10.1.2.3".into()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0".into()),
            token_hash: [9; 32],
        };
        intern_all(&s, &interner, &tree).unwrap();
        let v = encode(&s, &interner);
        assert!(v.len() < 80, "{} bytes", v.len());
        assert_eq!(decode(s.created_ms, &s.sid, &v, &interner).unwrap(), s);
        for ip in ["::1", "010.1.2.3", "not an ip", "2001:db8::1"] {
            s.ip = Some(ip.into());
            s.properties.insert("k".into(), ip.into());
            s.last_access_ms = s.created_ms - 5;
            let v = encode(&s, &interner);
            assert_eq!(decode(s.created_ms, &s.sid, &v, &interner).unwrap(), s);
        }
        let v = encode(&s, &interner);
        let reloaded = Interner::load(&tree).unwrap();
        assert_eq!(decode(s.created_ms, &s.sid, &v, &reloaded).unwrap(), s);
        assert!(decode(s.created_ms, &s.sid, &v[..v.len() - 1], &reloaded).is_err());
    }
}
