//! The transmitter's endpoints as service methods: a receiver's stream (create, read, update,
//! replace, delete), its status, verification and poll; the metadata; and what administrators
//! see and change. A receiver reaches only its own stream: another's id is answered as unknown.

use std::time::Duration;

use chrono::Utc;
use sessions::signal::{
    StreamDelivery, StreamRecord, StreamStatus, POLL_METHOD, PUSH_METHOD, STREAMS_REALM,
    STREAM_UPDATED_REASON, VERIFICATION_REASON,
};
use sessions::{
    AttemptResult, AuditEntry, Delivery, NewDelivery, RealmSettingsUpdate, Result, SessionError,
};

use super::config::{
    self, AuthorizationScheme, DeliverySettings, PollRequest, PollResponse, StreamConfiguration,
    StreamRequest, StreamStatusBody, StreamSummary, TransmitterMetadata, VerificationRequest,
    EVENTS_SUPPORTED, SPEC_VERSION,
};
use super::set::{self, TOKEN_TYPE};
use super::{
    CONFIGURATION_PATH, JWKS_PATH, MIN_VERIFICATION_INTERVAL, POLL_PATH, STATUS_PATH,
    VERIFICATION_PATH,
};
use crate::api_keys::ApiKey;
use crate::roles::Permission;
use crate::{to_the_end, Actor, SessionService};

/// Most SETs one poll answers.
pub const MAX_POLLED: usize = 1000;
/// How long a poll that asks to wait waits for a first SET.
pub const LONG_POLL: Duration = Duration::from_secs(15);
/// How often a waiting poll looks again.
const LONG_POLL_STEP: Duration = Duration::from_millis(500);
/// Most `ack` and `setErrs` entries one poll takes (as many as it hands out).
const MAX_ACKED: usize = MAX_POLLED;
/// Most event types a stream may request.
const MAX_EVENTS_REQUESTED: usize = 16;
/// Longest description kept (in characters; longer ones are cut).
const MAX_DESCRIPTION_CHARS: usize = 255;

fn invalid(message: impl Into<String>) -> SessionError {
    SessionError::invalid(message)
}

/// A short text a receiver sends: at most `max` bytes, no control characters.
fn short_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(invalid(format!("{field} must be at most {max} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

fn unknown_stream(id: &str) -> SessionError {
    SessionError::StreamNotFound(id.to_owned())
}

impl SessionService {
    fn transmitter(&self) -> &str {
        &self.backchannel.transmitter
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.transmitter())
    }

    fn stream_configuration(&self, s: &StreamRecord) -> StreamConfiguration {
        let interval = MIN_VERIFICATION_INTERVAL.as_secs();
        config::configuration(self.transmitter(), &self.endpoint(POLL_PATH), interval, s)
    }

    /// The transmitter's metadata (SSF 1.0 §7).
    pub fn ssf_metadata(&self) -> TransmitterMetadata {
        TransmitterMetadata {
            spec_version: SPEC_VERSION.into(),
            issuer: self.transmitter().to_owned(),
            jwks_uri: self.endpoint(JWKS_PATH),
            delivery_methods_supported: vec![PUSH_METHOD.into(), POLL_METHOD.into()],
            configuration_endpoint: self.endpoint(CONFIGURATION_PATH),
            status_endpoint: self.endpoint(STATUS_PATH),
            verification_endpoint: self.endpoint(VERIFICATION_PATH),
            authorization_schemes: vec![AuthorizationScheme {
                spec_urn: "urn:ietf:rfc:6750".into(),
            }],
            default_subjects: "ALL".into(),
        }
    }

    /// The key's stream, read again from the store (another server may have changed it);
    /// with `id`, only if it is that one.
    async fn own_stream(&self, key: &ApiKey, id: Option<&str>) -> Result<StreamRecord> {
        self.backchannel.streams.reload().await?;
        match (self.backchannel.streams.of_key(&key.name), id) {
            (Some(s), None) => Ok(s),
            (Some(s), Some(id)) if s.id == id => Ok(s),
            (_, Some(id)) => Err(unknown_stream(id)),
            (None, None) => Err(unknown_stream("(none)")),
        }
    }

    /// Creates the key's stream (SSF 1.0 §8.1.1.1); a key has one at most (409 otherwise).
    pub async fn create_stream(
        &self,
        key: &ApiKey,
        request: StreamRequest,
    ) -> Result<StreamConfiguration> {
        if request.stream_id.is_some() {
            return Err(invalid(
                "stream_id is chosen by the transmitter; leave it out",
            ));
        }
        let _writing = self.backchannel.streams.writing.lock().await;
        self.backchannel.streams.reload().await?;
        if let Some(s) = self.backchannel.streams.of_key(&key.name) {
            return Err(SessionError::Conflict(format!(
                "API key '{}' has stream '{}' already; read it with GET or change it with PATCH \
                 or PUT",
                key.name, s.id
            )));
        }
        let aud = match &request.aud {
            None => key.name.clone(),
            Some(aud) => audience(aud)?,
        };
        let now = Utc::now();
        let mut stream = StreamRecord {
            id: uuid::Uuid::new_v4().simple().to_string(),
            key_name: key.name.clone(),
            aud,
            realms: None,
            events_requested: EVENTS_SUPPORTED.map(str::to_owned).to_vec(),
            delivery: StreamDelivery::Poll,
            description: None,
            subject_format: Default::default(),
            status: StreamStatus::Enabled,
            status_reason: None,
            status_by_admin: false,
            created_at: now,
            updated_at: now,
        };
        self.check_transmitter_members(&request, None)?;
        self.apply(key, &mut stream, request, Apply::Create).await?;
        self.backchannel.streams.put(&stream).await?;
        self.audit_stream(&Actor::receiver(key), "create_stream", &stream, None)
            .await?;
        Ok(self.stream_configuration(&stream))
    }

    /// The key's streams (SSF 1.0 §8.1.1.2): all of them (none or one) without `stream_id`.
    pub async fn read_streams(
        &self,
        key: &ApiKey,
        stream_id: Option<&str>,
    ) -> Result<Vec<StreamConfiguration>> {
        match self.own_stream(key, stream_id).await {
            Ok(s) => Ok(vec![self.stream_configuration(&s)]),
            Err(SessionError::StreamNotFound(_)) if stream_id.is_none() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Updates (`replace` false, SSF 1.0 §8.1.1.3: what the request leaves out stays) or
    /// replaces (§8.1.1.4: what it leaves out is deleted) the key's stream.
    pub async fn update_stream(
        &self,
        key: &ApiKey,
        request: StreamRequest,
        replace: bool,
    ) -> Result<StreamConfiguration> {
        let id = request
            .stream_id
            .clone()
            .ok_or_else(|| invalid("stream_id is required"))?;
        let _writing = self.backchannel.streams.writing.lock().await;
        let mut stream = self.own_stream(key, Some(&id)).await?;
        self.check_transmitter_members(&request, Some(&stream))?;
        let how = if replace {
            Apply::Replace
        } else {
            Apply::Update
        };
        self.apply(key, &mut stream, request, how).await?;
        stream.updated_at = Utc::now();
        self.backchannel.streams.put(&stream).await?;
        let action = if replace {
            "replace_stream"
        } else {
            "update_stream"
        };
        self.audit_stream(&Actor::receiver(key), action, &stream, None)
            .await?;
        Ok(self.stream_configuration(&stream))
    }

    /// Deletes the key's stream (SSF 1.0 §8.1.1.5). What it had queued is given up.
    pub async fn delete_stream(&self, key: &ApiKey, stream_id: &str) -> Result<()> {
        let _writing = self.backchannel.streams.writing.lock().await;
        let stream = self.own_stream(key, Some(stream_id)).await?;
        self.backchannel.streams.delete(&stream.id).await?;
        self.audit_stream(&Actor::receiver(key), "delete_stream", &stream, None)
            .await?;
        self.wake_deliveries();
        Ok(())
    }

    /// The status of the key's stream (SSF 1.0 §8.1.2.1).
    pub async fn stream_status(&self, key: &ApiKey, stream_id: &str) -> Result<StreamStatusBody> {
        let s = self.own_stream(key, Some(stream_id)).await?;
        Ok(status_body(&s))
    }

    /// Sets the status of the key's stream (SSF 1.0 §8.1.2.2), unless an administrator set it.
    pub async fn set_stream_status(
        &self,
        key: &ApiKey,
        body: StreamStatusBody,
    ) -> Result<StreamStatusBody> {
        if let Some(reason) = &body.reason {
            short_text("reason", reason, 255)?;
        }
        let _writing = self.backchannel.streams.writing.lock().await;
        let mut stream = self.own_stream(key, Some(&body.stream_id)).await?;
        if stream.status_by_admin && stream.status != body.status {
            return Err(SessionError::Forbidden(format!(
                "an administrator set stream '{}' {}; only an administrator can change it",
                stream.id,
                stream.status.as_str()
            )));
        }
        stream.status = body.status;
        stream.status_reason = body.reason;
        stream.updated_at = Utc::now();
        self.backchannel.streams.put(&stream).await?;
        let action = format!("stream_{}", stream.status.as_str());
        let reason = stream.status_reason.clone();
        self.audit_stream(&Actor::receiver(key), &action, &stream, reason)
            .await?;
        self.wake_deliveries();
        Ok(status_body(&stream))
    }

    /// Queues a verification event for the key's stream (SSF 1.0 §8.1.4); at most one per
    /// [`MIN_VERIFICATION_INTERVAL`] (429 sooner).
    pub async fn verify_stream(&self, key: &ApiKey, request: VerificationRequest) -> Result<()> {
        if let Some(state) = &request.state {
            short_text("state", state, 255)?;
        }
        let stream = self.own_stream(key, Some(&request.stream_id)).await?;
        if stream.status == StreamStatus::Disabled {
            return Err(invalid(format!(
                "stream '{}' is disabled; enable it first",
                stream.id
            )));
        }
        if !self.backchannel.streams.verification_allowed(&stream.id) {
            return Err(SessionError::TooSoon(format!(
                "ask for a verification event at most every {} s",
                MIN_VERIFICATION_INTERVAL.as_secs()
            )));
        }
        let state = request.state.unwrap_or_default();
        self.queue_stream_event(&stream, VERIFICATION_REASON, state)
            .await?;
        Ok(())
    }

    /// Queues one of the stream's own events (verification, stream updated) in
    /// [`STREAMS_REALM`], created on first use.
    async fn queue_stream_event(
        &self,
        stream: &StreamRecord,
        reason: &str,
        detail: String,
    ) -> Result<Delivery> {
        let store = self.store.clone();
        let new = NewDelivery {
            realm: STREAMS_REALM.into(),
            client_id: stream.client_id(),
            uri: stream.delivery.target().to_owned(),
            subject_id: detail,
            sid: uuid::Uuid::new_v4().to_string(),
            reason: reason.into(),
        };
        let queued = to_the_end(async move {
            if let Err(SessionError::RealmNotFound(_)) = store.get_realm(STREAMS_REALM).await {
                let settings = RealmSettingsUpdate::default();
                store
                    .put_realm(STREAMS_REALM, &settings, "server", Utc::now())
                    .await?;
            }
            store.queue_delivery(&new, Utc::now()).await
        })
        .await?;
        self.wake_deliveries();
        Ok(queued)
    }

    /// A poll (RFC 8936) of the key's stream: records the acknowledgements and errors, then
    /// answers what is waiting, up to `max_events`; unless asked to return at once, waits up to
    /// [`LONG_POLL`] for a first SET.
    pub async fn poll_stream(&self, key: &ApiKey, request: PollRequest) -> Result<PollResponse> {
        let stream = self.own_stream(key, None).await?;
        if stream.delivery != StreamDelivery::Poll {
            return Err(invalid(format!(
                "stream '{}' is delivered by push; change its delivery method to {POLL_METHOD} \
                 to poll it",
                stream.id
            )));
        }
        if request.ack.len() > MAX_ACKED || request.set_errs.len() > MAX_ACKED {
            return Err(invalid(format!(
                "a poll acknowledges or reports at most {MAX_ACKED} SETs"
            )));
        }
        for err in request.set_errs.values() {
            short_text("setErrs err", &err.err, 255)?;
            short_text("setErrs description", &err.description, 1000)?;
        }
        let client = stream.client_id();
        let now = Utc::now();
        for jti in &request.ack {
            if let Some(d) = self.polled(&client, jti).await? {
                let (store, jti) = (self.store.clone(), jti.clone());
                to_the_end(async move {
                    store
                        .record_attempt(&d, &jti, &AttemptResult::Delivered, now)
                        .await
                })
                .await?;
            }
        }
        for (jti, err) in &request.set_errs {
            if let Some(d) = self.polled(&client, jti).await? {
                let error = format!("receiver: {}: {}", err.err, err.description);
                let result = AttemptResult::GiveUp { error };
                let (store, jti) = (self.store.clone(), jti.clone());
                to_the_end(async move { store.record_attempt(&d, &jti, &result, now).await })
                    .await?;
            }
        }
        let max = request
            .max_events
            .map_or(MAX_POLLED, |m| (m as usize).min(MAX_POLLED));
        if max == 0 {
            return Ok(PollResponse::default());
        }
        let waited = tokio::time::Instant::now();
        loop {
            let (waiting, more) = self.waiting(&stream, max).await?;
            if !waiting.is_empty() || request.return_immediately || waited.elapsed() >= LONG_POLL {
                return self.as_sets(&stream, waiting, more);
            }
            tokio::time::sleep(LONG_POLL_STEP).await;
        }
    }

    /// The pending delivery of a poll stream's client a `jti` names, if any.
    async fn polled(&self, client: &str, jti: &str) -> Result<Option<Delivery>> {
        let Some((realm, id)) = set::delivery_of_jti(jti) else {
            return Ok(None);
        };
        match self.store.get_delivery(realm, id).await {
            Ok(d) if d.client_id == client && d.status == sessions::DeliveryStatus::Pending => {
                Ok(Some(d))
            }
            Ok(_) | Err(SessionError::DeliveryNotFound(_) | SessionError::RealmNotFound(_)) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Up to `max` deliveries waiting for a poll stream, and whether more wait: its own events,
    /// then (unless it is paused or disabled) the session events of the realms it covers.
    async fn waiting(&self, stream: &StreamRecord, max: usize) -> Result<(Vec<Delivery>, bool)> {
        let client = stream.client_id();
        // A stream that is not enabled gets only its stream-updated events: read past the
        // others (verification events, held) so that none of those is left out.
        let own_limit = if stream.status == StreamStatus::Enabled {
            max + 1
        } else {
            MAX_POLLED + 1
        };
        let mut out: Vec<Delivery> = match self
            .store
            .pending_deliveries(STREAMS_REALM, &client, own_limit)
            .await
        {
            Ok(own) => own
                .into_iter()
                .filter(|d| {
                    stream.status == StreamStatus::Enabled || d.reason == STREAM_UPDATED_REASON
                })
                .collect(),
            Err(SessionError::RealmNotFound(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        if stream.status == StreamStatus::Enabled {
            let realms = match &stream.realms {
                Some(realms) => realms.clone(),
                None => self
                    .store
                    .list_user_realms()
                    .await?
                    .into_iter()
                    .map(|r| r.name)
                    .collect(),
            };
            for realm in realms {
                if out.len() > max {
                    break;
                }
                let left = max + 1 - out.len();
                match self.store.pending_deliveries(&realm, &client, left).await {
                    Ok(found) => out.extend(found),
                    Err(SessionError::RealmNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let more = out.len() > max;
        out.truncate(max);
        Ok((out, more))
    }

    fn as_sets(
        &self,
        stream: &StreamRecord,
        waiting: Vec<Delivery>,
        more_available: bool,
    ) -> Result<PollResponse> {
        let now = Utc::now();
        let mut sets = std::collections::BTreeMap::new();
        for d in &waiting {
            let claims =
                set::for_delivery(self.transmitter(), &self.backchannel.issuer, stream, d, now);
            let token = self.backchannel.keys.sign_typed(TOKEN_TYPE, &claims)?;
            sets.insert(claims.jti, token);
        }
        Ok(PollResponse {
            sets,
            more_available,
        })
    }

    /// Every stream, for administrators.
    pub async fn list_signal_streams(&self, actor: &Actor) -> Result<Vec<StreamSummary>> {
        actor.require(Permission::Read)?;
        self.backchannel.streams.reload().await?;
        let all = self.backchannel.streams.all();
        Ok(all.iter().map(|s| self.summary(s)).collect())
    }

    /// Sets a stream's status as an administrator: the receiver cannot change it back, and
    /// hears of it through a stream-updated event. Audited.
    pub async fn set_signal_stream_status(
        &self,
        actor: &Actor,
        stream_id: &str,
        status: StreamStatus,
        reason: Option<String>,
    ) -> Result<StreamSummary> {
        actor.require(Permission::Administer)?;
        if let Some(reason) = &reason {
            short_text("reason", reason, 255)?;
        }
        let _writing = self.backchannel.streams.writing.lock().await;
        self.backchannel.streams.reload().await?;
        let mut stream = self
            .backchannel
            .streams
            .get(stream_id)
            .ok_or_else(|| unknown_stream(stream_id))?;
        let changed = stream.status != status;
        stream.status = status;
        stream.status_reason = reason.clone();
        stream.status_by_admin = status != StreamStatus::Enabled;
        stream.updated_at = Utc::now();
        self.backchannel.streams.put(&stream).await?;
        if changed {
            self.queue_stream_event(&stream, STREAM_UPDATED_REASON, status.as_str().into())
                .await?;
        }
        let action = format!("stream_{}", status.as_str());
        self.audit_stream(actor, &action, &stream, reason).await?;
        Ok(self.summary(&stream))
    }

    fn summary(&self, s: &StreamRecord) -> StreamSummary {
        StreamSummary {
            configuration: self.stream_configuration(s),
            key_name: s.key_name.clone(),
            status: s.status,
            status_reason: s.status_reason.clone(),
            status_by_admin: s.status_by_admin,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }

    async fn audit_stream(
        &self,
        actor: &Actor,
        action: &str,
        stream: &StreamRecord,
        reason: Option<String>,
    ) -> Result<()> {
        let entry = AuditEntry {
            at: Utc::now(),
            actor: actor.audit_name(),
            realm: None,
            action: action.to_owned(),
            target: format!("stream:{}", stream.id),
            reason,
            outcome: "ok".into(),
        };
        self.store.record_audit(&entry).await
    }

    /// Refuses transmitter-supplied members that do not match what the transmitter says
    /// (`stream` is the stream before an update; `None` on create, where `aud` is the
    /// receiver's to propose).
    fn check_transmitter_members(
        &self,
        request: &StreamRequest,
        stream: Option<&StreamRecord>,
    ) -> Result<()> {
        if let Some(iss) = &request.iss {
            if iss != self.transmitter() {
                return Err(invalid(format!(
                    "iss must be this transmitter's issuer, '{}'",
                    self.transmitter()
                )));
            }
        }
        if let (Some(aud), Some(stream)) = (&request.aud, stream) {
            if audience(aud)? != stream.aud {
                return Err(invalid(format!(
                    "aud cannot change; it is '{}'",
                    stream.aud
                )));
            }
        }
        if let Some(supported) = &request.events_supported {
            let mut supported = supported.clone();
            supported.sort();
            if supported != EVENTS_SUPPORTED {
                return Err(invalid(format!(
                    "events_supported is the transmitter's: {EVENTS_SUPPORTED:?}"
                )));
            }
        }
        if let Some(delivered) = &request.events_delivered {
            let before = stream.map_or_else(Vec::new, |s| config::delivered(&s.events_requested));
            if stream.is_none() || *delivered != before {
                return Err(invalid(
                    "events_delivered is the transmitter's and must match the stream's current \
                     value",
                ));
            }
        }
        if let Some(interval) = request.min_verification_interval {
            if interval != MIN_VERIFICATION_INTERVAL.as_secs() {
                return Err(invalid(format!(
                    "min_verification_interval is the transmitter's: {}",
                    MIN_VERIFICATION_INTERVAL.as_secs()
                )));
            }
        }
        Ok(())
    }

    /// Applies the receiver-supplied members of a request to a stream, checked.
    async fn apply(
        &self,
        key: &ApiKey,
        stream: &mut StreamRecord,
        request: StreamRequest,
        how: Apply,
    ) -> Result<()> {
        let keep = how == Apply::Update;
        match request.events_requested {
            Some(events) => stream.events_requested = events_requested(events)?,
            None if how == Apply::Replace => stream.events_requested = Vec::new(),
            None => {}
        }
        match request.delivery {
            Some(delivery) => {
                stream.delivery = self.delivery(delivery, &stream.delivery).await?;
            }
            None if !keep => stream.delivery = StreamDelivery::Poll,
            None => {}
        }
        match request.description {
            Some(text) => {
                let text: String = text.chars().take(MAX_DESCRIPTION_CHARS).collect();
                short_text("description", &text, 4 * MAX_DESCRIPTION_CHARS)?;
                stream.description = Some(text);
            }
            None if !keep => stream.description = None,
            None => {}
        }
        match request.subject_format {
            Some(format) => stream.subject_format = format,
            None if !keep => stream.subject_format = Default::default(),
            None => {}
        }
        match request.realms {
            Some(realms) => stream.realms = Some(self.stream_realms(key, realms).await?),
            None if !keep => stream.realms = key.realms.clone(),
            None => {}
        }
        Ok(())
    }

    /// The delivery a receiver asks for, checked: a push endpoint held to the target rules, with
    /// a well-formed `Authorization` value (kept from `before` when an update leaves it out for
    /// the same endpoint); a poll endpoint, if named, must be this server's.
    async fn delivery(
        &self,
        asked: DeliverySettings,
        before: &StreamDelivery,
    ) -> Result<StreamDelivery> {
        match asked.method.as_str() {
            PUSH_METHOD => {
                let url = asked
                    .endpoint_url
                    .ok_or_else(|| invalid("delivery.endpoint_url is required for push"))?;
                endpoint_url(&url)?;
                self.backchannel
                    .allow_hosts
                    .check_registration(&url, false)
                    .await
                    .map_err(|refusal| {
                        SessionError::BackchannelUriNotAllowed(format!(
                            "delivery.endpoint_url: {refusal}"
                        ))
                    })?;
                let authorization_header = match asked.authorization_header {
                    Some(value) => {
                        authorization(&value)?;
                        Some(value)
                    }
                    None => match before {
                        StreamDelivery::Push {
                            endpoint_url,
                            authorization_header,
                        } if *endpoint_url == url => authorization_header.clone(),
                        _ => None,
                    },
                };
                Ok(StreamDelivery::Push {
                    endpoint_url: url,
                    authorization_header,
                })
            }
            POLL_METHOD => {
                if asked.authorization_header.is_some() {
                    return Err(invalid(
                        "delivery.authorization_header applies to push delivery only",
                    ));
                }
                match asked.endpoint_url {
                    Some(url) if url != self.endpoint(POLL_PATH) => Err(invalid(format!(
                        "delivery.endpoint_url of a poll stream is the transmitter's: {}",
                        self.endpoint(POLL_PATH)
                    ))),
                    _ => Ok(StreamDelivery::Poll),
                }
            }
            other => Err(invalid(format!(
                "delivery.method '{other}' is not supported; use {PUSH_METHOD} (push) or \
                 {POLL_METHOD} (poll)"
            ))),
        }
    }

    /// The realms a stream may cover: at least one, each an existing realm the key reaches.
    async fn stream_realms(&self, key: &ApiKey, mut realms: Vec<String>) -> Result<Vec<String>> {
        if realms.is_empty() {
            return Err(invalid(
                "realms must name at least one realm, or be left out for every realm the key \
                 reaches",
            ));
        }
        realms.sort();
        realms.dedup();
        for realm in &realms {
            sessions::validate::realm_name(realm)?;
            if sessions::validate::is_reserved_realm(realm) {
                return Err(invalid(format!("realm '{realm}' cannot be covered")));
            }
            if !key.reaches(realm) {
                return Err(SessionError::Forbidden(format!(
                    "API key '{}' is limited to realms {}; it does not reach realm '{realm}'",
                    key.name,
                    key.realms_label()
                )));
            }
            self.store.get_realm(realm).await?;
        }
        Ok(realms)
    }
}

/// How a request's missing receiver-supplied members count.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Apply {
    /// Defaults.
    Create,
    /// They stay as they are.
    Update,
    /// They are deleted.
    Replace,
}

fn status_body(s: &StreamRecord) -> StreamStatusBody {
    StreamStatusBody {
        stream_id: s.id.clone(),
        status: s.status,
        reason: s.status_reason.clone(),
    }
}

/// An `aud` as a request gives it: a string, or an array of exactly one.
fn audience(aud: &serde_json::Value) -> Result<String> {
    let one = match aud {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(values) if values.len() == 1 => match &values[0] {
            serde_json::Value::String(s) => s.clone(),
            _ => return Err(invalid("aud must be a string or an array of one string")),
        },
        _ => return Err(invalid("aud must be a string or an array of one string")),
    };
    if one.is_empty() {
        return Err(invalid("aud must not be empty"));
    }
    short_text("aud", &one, 255)?;
    Ok(one)
}

/// The event types a receiver requests, checked and without repeats.
fn events_requested(events: Vec<String>) -> Result<Vec<String>> {
    if events.len() > MAX_EVENTS_REQUESTED {
        return Err(invalid(format!(
            "events_requested may name at most {MAX_EVENTS_REQUESTED} event types"
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(events.len());
    for e in events {
        if e.is_empty() {
            return Err(invalid("events_requested must not contain an empty string"));
        }
        short_text("events_requested", &e, 255)?;
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

/// A push endpoint's form: an absolute http(s) URL with a host and no fragment, at most 2000
/// bytes. (Which hosts it may name is the target rules' say.)
fn endpoint_url(url: &str) -> Result<()> {
    if url.len() > 2000 {
        return Err(invalid("delivery.endpoint_url must be at most 2000 bytes"));
    }
    let bad = |why: &str| Err(invalid(format!("delivery.endpoint_url {why}")));
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("must not contain spaces or control characters");
    }
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return bad("must be an absolute URL");
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return bad("must be an http(s) URL");
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return bad("must name a host");
    }
    if parsed.fragment().is_some() {
        return bad("must not have a fragment");
    }
    Ok(())
}

/// An `Authorization` value for the receiver's endpoint: at most 4096 bytes of visible ASCII
/// and spaces.
fn authorization(value: &str) -> Result<()> {
    if value.is_empty() || value.len() > 4096 {
        return Err(invalid(
            "delivery.authorization_header must be 1 to 4096 bytes",
        ));
    }
    if !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(invalid(
            "delivery.authorization_header must be visible ASCII characters and spaces",
        ));
    }
    Ok(())
}
