//! The dialog for ending sessions: what ending also does, a client scope, a reason, a dry-run preview,
//! then the real thing.

use std::collections::BTreeSet;

use leptos::prelude::*;
use sessions::{EndAllSessions, EndOutcome, EndSessions};

use crate::error::AppError;
use crate::server_fns::sessions::{end_all_sessions, end_sessions};

/// What the dialog ends.
#[derive(Clone, Debug, PartialEq)]
pub enum EndTarget {
    /// The sessions whose sids are selected.
    Selected,
    /// Every session of one subject.
    Subject(String),
    /// Every session a filter matches (an address range, creation times).
    Filter(Box<EndSessions>),
    /// Every session of the realm; needs the realm's name typed to confirm.
    Realm,
}

/// One ending of sessions, as the server is asked for it.
#[derive(Clone, Debug, PartialEq)]
pub enum Ending {
    /// Chosen sessions, or a subject's.
    Sessions(String, Box<EndSessions>),
    /// Every session of the realm.
    Realm(String, EndAllSessions),
}

impl Ending {
    /// Asks the server.
    pub async fn run(self) -> Result<EndOutcome, AppError> {
        match self {
            Ending::Sessions(realm, request) => end_sessions(realm, *request).await,
            Ending::Realm(realm, request) => end_all_sessions(realm, request).await,
        }
    }
}

/// The action pages ending with: their data is keyed on its version, and they show its outcome
/// (see [`EndNotice`]).
pub type EndAction = Action<Ending, Result<EndOutcome, AppError>>;

/// A new [`EndAction`].
pub fn end_action() -> EndAction {
    Action::new(|r: &Ending| r.clone().run())
}

/// What the last ending did, or why it failed.
#[component]
pub fn EndNotice(ending: EndAction) -> impl IntoView {
    move || {
        if ending.pending().get() {
            return Some(view! { <p class="notice" role="status">"Ending…"</p> }.into_any());
        }
        ending.value().get().map(|result| match result {
            Ok(outcome) => {
                view! { <p class="notice ok" role="status">{describe(&outcome)}</p> }.into_any()
            }
            Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    }
}

/// One labelled flag checkbox.
#[component]
fn Flag(label: &'static str, value: RwSignal<bool>) -> impl IntoView {
    view! {
        <label class="flag">
            <input type="checkbox" prop:checked=move || value.get() on:change=move |_| value.update(|v| *v = !*v)/>
            {label}
        </label>
    }
}

/// Summary of what ending sessions did or would do.
pub fn describe(o: &EndOutcome) -> String {
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    let verb = if o.dry_run { "Would end" } else { "Ended" };
    // Ending a whole realm lists no sids; its count is the records deleted.
    let ended = (o.ended.len() as u64).max(o.records_deleted);
    let mut text = format!(
        "{verb} {ended} session{}, {} client{} affected",
        plural(ended),
        o.clients_affected,
        plural(o.clients_affected)
    );
    if o.records_deleted < ended {
        text.push_str(&format!(
            ", {} record{} deleted",
            o.records_deleted,
            plural(o.records_deleted)
        ));
    }
    if !o.not_found.is_empty() {
        text.push_str(&format!(", {} already gone", o.not_found.len()));
    }
    let revoked: Vec<String> = [(o.tokens_revoked, "token"), (o.consents_revoked, "consent")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}{}", plural(n)))
        .collect();
    if !revoked.is_empty() {
        let verb = if o.dry_run {
            "would be revoked"
        } else {
            "revoked"
        };
        text.push_str(&format!(", {} {verb}", revoked.join(" and ")));
    }
    if o.clients_notified > 0 {
        let verb = if o.dry_run { "would be sent" } else { "queued" };
        text.push_str(&format!(
            ", {} logout notification{} {verb}",
            o.clients_notified,
            plural(o.clients_notified)
        ));
    }
    text.push('.');
    text
}

/// The dialog for ending sessions of `realm`: the selected ones, a subject's, or all. "Preview"
/// asks for a dry run shown in the dialog; "Confirm" hands the ending to `ending` and closes.
#[component]
pub fn EndDialog(
    realm: String,
    selected: RwSignal<BTreeSet<String>>,
    target: RwSignal<Option<EndTarget>>,
    ending: EndAction,
) -> impl IntoView {
    let remove_record = RwSignal::new(true);
    let revoke_tokens = RwSignal::new(true);
    let revoke_consents = RwSignal::new(true);
    let backchannel = RwSignal::new(true);
    let clients = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let typed = RwSignal::new(String::new());
    let realm_for_request = realm.clone();
    // The revocation the dialog describes, as a dry run or for real.
    let request = move |dry_run: bool| {
        let realm = realm_for_request.clone();
        let text = |s: RwSignal<String>| {
            let v = s.get_untracked();
            (!v.trim().is_empty()).then(|| v.trim().to_owned())
        };
        let scope: Vec<String> = clients
            .get_untracked()
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        let (remove, tokens, consents, notify) = (
            remove_record.get_untracked(),
            revoke_tokens.get_untracked(),
            revoke_consents.get_untracked(),
            backchannel.get_untracked(),
        );
        match target.get_untracked() {
            Some(EndTarget::Realm) => Ending::Realm(
                realm,
                EndAllSessions {
                    remove_server_side_session: remove,
                    revoke_tokens: tokens,
                    revoke_consents: consents,
                    send_backchannel_logout: notify,
                    dry_run,
                    reason: text(reason),
                },
            ),
            other => {
                // Which sessions: the selected ones, a subject's, or a filter's.
                let which = match other {
                    Some(EndTarget::Selected) => EndSessions {
                        sids: selected.get_untracked().into_iter().collect(),
                        ..Default::default()
                    },
                    Some(EndTarget::Subject(s)) => EndSessions {
                        subject_id: Some(s),
                        ..Default::default()
                    },
                    Some(EndTarget::Filter(f)) => *f,
                    _ => EndSessions::default(),
                };
                Ending::Sessions(
                    realm,
                    Box::new(EndSessions {
                        client_ids: (!scope.is_empty()).then_some(scope),
                        remove_server_side_session: remove,
                        revoke_tokens: tokens,
                        revoke_consents: consents,
                        send_backchannel_logout: notify,
                        dry_run,
                        reason: text(reason),
                        ..which
                    }),
                )
            }
        }
    };
    let preview = end_action();
    let close = move || {
        target.set(None);
        preview.value().set(None);
        typed.set(String::new());
    };
    let realm_name = realm.clone();
    let title = move || match target.get() {
        Some(EndTarget::Selected) => {
            let n = selected.with(BTreeSet::len);
            format!("End {n} selected session{}", if n == 1 { "" } else { "s" })
        }
        Some(EndTarget::Subject(s)) => format!("End all sessions of {s}"),
        Some(EndTarget::Filter(f)) => format!(
            "End all sessions matching {}",
            sessions::validate::describe_filter(&f.filters())
        ),
        Some(EndTarget::Realm) => format!("End every session in realm {realm_name}"),
        None => String::new(),
    };
    // Keyboard users land in the dialog when it opens.
    let dialog_ref = NodeRef::<leptos::html::Div>::new();
    Effect::new(move |_| {
        if target.get().is_some() {
            if let Some(el) = dialog_ref.get() {
                let _ = el.focus();
            }
        }
    });
    let is_realm = move || target.get() == Some(EndTarget::Realm);
    let realm_confirm = realm.clone();
    let confirmed = Signal::derive(move || !is_realm() || typed.get() == realm_confirm);
    let preview_text = move || {
        preview.value().get().map(|result| match result {
            Ok(outcome) => {
                view! { <p class="notice" aria-live="polite" data-preview>{describe(&outcome)}</p> }
                    .into_any()
            }
            Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    };
    let request_preview = request.clone();
    view! {
        <Show when=move || target.get().is_some()>
            <div class="backdrop">
                <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="end-title" tabindex="-1" node_ref=dialog_ref
                    on:keydown=move |ev| if ev.key() == "Escape" { close() }>
                    <h2 id="end-title">{title.clone()}</h2>
                    <fieldset>
                        <legend>"When ending, also"</legend>
                        <Flag label="Delete the session record" value=remove_record/>
                        <Flag label="Revoke tokens" value=revoke_tokens/>
                        <Flag label="Revoke consents" value=revoke_consents/>
                        <Flag label="Send back-channel logout" value=backchannel/>
                    </fieldset>
                    <Show when=move || !is_realm()>
                        <label>"Only for clients (comma-separated, empty for all)"
                            <input type="text" name="client_scope" prop:value=move || clients.get()
                                on:input=move |ev| clients.set(event_target_value(&ev))/>
                        </label>
                    </Show>
                    <label>"Reason"
                        <input type="text" name="reason" maxlength="1000" prop:value=move || reason.get()
                            on:input=move |ev| reason.set(event_target_value(&ev))/>
                    </label>
                    <Show when=is_realm>
                        <label>"Type the realm's name to confirm"
                            <input type="text" name="confirm_realm" autocomplete="off" prop:value=move || typed.get()
                                on:input=move |ev| typed.set(event_target_value(&ev))/>
                        </label>
                    </Show>
                    {preview_text}
                    <div class="actions">
                        <button type="button" on:click=move |_| close()>"Cancel"</button>
                        <button type="button" disabled=move || preview.pending().get()
                            on:click={
                                let request = request_preview.clone();
                                move |_| { preview.dispatch(request(true)); }
                            }>"Preview"</button>
                        <button type="button" class="danger" disabled=move || ending.pending().get() || !confirmed.get()
                            on:click={
                                let request = request.clone();
                                move |_| {
                                    ending.dispatch(request(false));
                                    close();
                                }
                            }>"Confirm"</button>
                    </div>
                </div>
            </div>
        </Show>
    }
}
