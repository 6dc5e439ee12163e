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
use crate::network::{LastAddress, Network};

const VERSION: u8 = 2;

const HAS_NAME: u8 = 1;
const IP_TEXT: u8 = 2;
const IP_V4: u8 = 4;
const IP_V6: u8 = 8;
const HAS_UA: u8 = 16;
const HAS_PROPS: u8 = 32;
const HAS_NETWORK: u8 = 64;
const HAS_LAST: u8 = 128;

// What a stored network holds (its first byte).
const NET_COUNTRY: u8 = 1;
const NET_CITY: u8 = 2;
const NET_ASN: u8 = 4;
const NET_ORG: u8 = 8;

/// Strings stored once and referred to by a number: client ids, user agents, and the city and
/// autonomous system names of networks.
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
    let ip = s.ip.as_deref().map(address);
    if let Some((f, _)) = &ip {
        flags |= f;
    }
    if s.user_agent.is_some() {
        flags |= HAS_UA;
    }
    if !s.properties.is_empty() {
        flags |= HAS_PROPS;
    }
    if s.network.is_some() {
        flags |= HAS_NETWORK;
    }
    if s.last.is_some() {
        flags |= HAS_LAST;
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
    if let Some(n) = &s.network {
        put_network(&mut out, n, &table);
    }
    if let Some(last) = &s.last {
        // The address's kind, then the address; then whether a network follows.
        let (kind, bytes) = address(&last.ip);
        out.push(kind);
        match kind {
            IP_TEXT => put_bytes(&mut out, &bytes),
            _ => out.extend_from_slice(&bytes),
        }
        match &last.network {
            Some(n) => {
                out.push(1);
                put_network(&mut out, n, &table);
            }
            None => out.push(0),
        }
    }
    out.extend_from_slice(&s.token_hash);
    out
}

/// An address as stored: 4 or 16 bytes when it is one in canonical form, else its text.
fn address(ip: &str) -> (u8, Vec<u8>) {
    match ip.parse::<IpAddr>() {
        Ok(addr) if addr.to_string() == ip => match addr {
            IpAddr::V4(a) => (IP_V4, a.octets().to_vec()),
            IpAddr::V6(a) => (IP_V6, a.octets().to_vec()),
        },
        _ => (IP_TEXT, ip.as_bytes().to_vec()),
    }
}

fn read_address(r: &mut Reader<'_>, kind: u8) -> Option<String> {
    match kind {
        IP_TEXT => String::from_utf8(r.bytes()?.to_vec()).ok(),
        IP_V4 => {
            let b: [u8; 4] = r.take(4)?.try_into().ok()?;
            Some(std::net::Ipv4Addr::from(b).to_string())
        }
        IP_V6 => {
            let b: [u8; 16] = r.take(16)?.try_into().ok()?;
            Some(std::net::Ipv6Addr::from(b).to_string())
        }
        _ => None,
    }
}

/// A network: which parts it holds, the country's two letters, the interned city, the number
/// and the interned organisation.
fn put_network(out: &mut Vec<u8>, n: &Network, table: &InternTable) {
    let country = n.country.as_deref().filter(|c| c.len() == 2);
    let mut parts = 0;
    for (present, bit) in [
        (country.is_some(), NET_COUNTRY),
        (n.city.is_some(), NET_CITY),
        (n.asn.is_some(), NET_ASN),
        (n.asn_org.is_some(), NET_ORG),
    ] {
        if present {
            parts |= bit;
        }
    }
    out.push(parts);
    if let Some(c) = country {
        out.extend_from_slice(c.as_bytes());
    }
    if let Some(city) = &n.city {
        put_varint(out, u64::from(table.ids[city.as_str()]));
    }
    if let Some(asn) = n.asn {
        put_varint(out, u64::from(asn));
    }
    if let Some(org) = &n.asn_org {
        put_varint(out, u64::from(table.ids[org.as_str()]));
    }
}

fn read_network(
    r: &mut Reader<'_>,
    interned: &dyn Fn(u64) -> Result<String>,
) -> Result<Option<Network>> {
    let corrupt = || SessionError::Storage("corrupt session record network".into());
    let parts = r.byte().ok_or_else(corrupt)?;
    let mut n = Network::default();
    if parts & NET_COUNTRY != 0 {
        let c = r.take(2).ok_or_else(corrupt)?;
        n.country = Some(String::from_utf8(c.to_vec()).map_err(|_| corrupt())?);
    }
    if parts & NET_CITY != 0 {
        n.city = Some(interned(r.varint().ok_or_else(corrupt)?)?);
    }
    if parts & NET_ASN != 0 {
        n.asn = Some(u32::try_from(r.varint().ok_or_else(corrupt)?).map_err(|_| corrupt())?);
    }
    if parts & NET_ORG != 0 {
        n.asn_org = Some(interned(r.varint().ok_or_else(corrupt)?)?);
    }
    Ok(Some(n))
}

/// Interns a session's client ids and user agent.
pub fn intern_all(s: &StoredSession, interner: &Interner, tree: &sled::Tree) -> Result<()> {
    for c in &s.client_ids {
        interner.intern(tree, c)?;
    }
    if let Some(ua) = &s.user_agent {
        interner.intern(tree, ua)?;
    }
    let last = s.last.as_ref().and_then(|l| l.network.as_ref());
    for n in s.network.iter().chain(last) {
        for name in [&n.city, &n.asn_org].into_iter().flatten() {
            interner.intern(tree, name)?;
        }
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
    let ip = match flags & (IP_TEXT | IP_V4 | IP_V6) {
        0 => None,
        kind => Some(read_address(&mut r, kind).ok_or_else(corrupt)?),
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
    let network = if flags & HAS_NETWORK != 0 {
        read_network(&mut r, &interned)?
    } else {
        None
    };
    let last = if flags & HAS_LAST != 0 {
        let kind = r.byte().ok_or_else(corrupt)?;
        let ip = read_address(&mut r, kind).ok_or_else(corrupt)?;
        let network = match r.byte().ok_or_else(corrupt)? {
            0 => None,
            _ => read_network(&mut r, &interned)?,
        };
        Some(LastAddress { ip, network })
    } else {
        None
    };
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
        network,
        last,
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
            network: None,
            last: None,
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
        let berlin = Network {
            country: Some("DE".into()),
            city: Some("Berlin".into()),
            asn: Some(3320),
            asn_org: Some("Deutsche Telekom AG".into()),
        };
        s.network = Some(berlin.clone());
        intern_all(&s, &interner, &tree).unwrap();
        for last in [
            LastAddress {
                ip: "198.51.100.7".into(),
                network: None,
            },
            LastAddress {
                ip: "2001:db8::7".into(),
                network: Some(Network {
                    country: Some("FR".into()),
                    ..Network::default()
                }),
            },
            LastAddress {
                ip: "odd text".into(),
                network: Some(berlin.clone()),
            },
        ] {
            s.last = Some(last);
            intern_all(&s, &interner, &tree).unwrap();
            let v = encode(&s, &interner);
            assert_eq!(decode(s.created_ms, &s.sid, &v, &interner).unwrap(), s);
        }
        s.last = None;
        let located = encode(&s, &interner).len();
        s.network = None;
        // Parts, two letters, two interned ids (one byte each) and the number (two): 7 bytes.
        assert_eq!(located - encode(&s, &interner).len(), 7);
        s.network = Some(berlin);
        let v = encode(&s, &interner);
        let reloaded = Interner::load(&tree).unwrap();
        assert_eq!(decode(s.created_ms, &s.sid, &v, &reloaded).unwrap(), s);
        assert!(decode(s.created_ms, &s.sid, &v[..v.len() - 1], &reloaded).is_err());
    }
}
