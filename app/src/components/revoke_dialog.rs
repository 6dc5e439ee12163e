//! The revocation dialog: what revocation also does, a client scope, a reason, a dry-run preview,
//! then the real thing.

use std::collections::BTreeSet;

use leptos::prelude::*;
use sessions::{RemoveOutcome, RemoveSessions};

use crate::pages::login::clean;
use crate::server_fns::sessions::revoke_sessions;

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

/// Summary of what a removal did or would do.
pub fn describe(o: &RemoveOutcome) -> String {
    let verb = if o.dry_run { "Would end" } else { "Ended" };
    let mut text = format!(
        "{verb} {} session{}, {} client{} affected",
        o.removed.len(),
        if o.removed.len() == 1 { "" } else { "s" },
        o.clients_affected,
        if o.clients_affected == 1 { "" } else { "s" },
    );
    if o.sessions_removed as usize != o.removed.len() {
        text.push_str(&format!(
            ", {} record{} removed",
            o.sessions_removed,
            if o.sessions_removed == 1 { "" } else { "s" }
        ));
    }
    if !o.not_found.is_empty() {
        text.push_str(&format!(", {} already gone", o.not_found.len()));
    }
    text.push('.');
    text
}

/// The dialog for revoking the selected sessions of `realm`.
#[component]
pub fn RevokeDialog(
    realm: String,
    selected: RwSignal<BTreeSet<String>>,
    open: RwSignal<bool>,
    on_done: Callback<RemoveOutcome>,
) -> impl IntoView {
    let remove_record = RwSignal::new(true);
    let revoke_tokens = RwSignal::new(true);
    let revoke_consents = RwSignal::new(true);
    let backchannel = RwSignal::new(true);
    let clients = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let request = move |dry_run: bool| {
        let scope: Vec<String> = clients
            .get_untracked()
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        let reason = reason.get_untracked();
        RemoveSessions {
            sids: selected.get_untracked().into_iter().collect(),
            client_ids: (!scope.is_empty()).then_some(scope),
            remove_server_side_session: remove_record.get_untracked(),
            revoke_tokens: revoke_tokens.get_untracked(),
            revoke_consents: revoke_consents.get_untracked(),
            send_backchannel_logout: backchannel.get_untracked(),
            dry_run,
            reason: (!reason.trim().is_empty()).then(|| reason.trim().to_owned()),
            ..Default::default()
        }
    };
    let run = Action::new(move |req: &RemoveSessions| {
        let (realm, req) = (realm.clone(), req.clone());
        async move { revoke_sessions(realm, req).await }
    });
    let preview = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    Effect::new(move |_| match run.value().get() {
        Some(Ok(outcome)) if outcome.dry_run => {
            error.set(None);
            preview.set(Some(describe(&outcome)));
        }
        Some(Ok(outcome)) => {
            error.set(None);
            preview.set(None);
            open.set(false);
            selected.set(BTreeSet::new());
            on_done.run(outcome);
        }
        Some(Err(e)) => error.set(Some(clean(&e.to_string()))),
        None => {}
    });
    let count = move || selected.with(BTreeSet::len);
    view! {
        <Show when=move || open.get()>
            <div class="backdrop">
                <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="revoke-title"
                    on:keydown=move |ev| if ev.key() == "Escape" { open.set(false) }>
                    <h2 id="revoke-title">{move || format!("Revoke {} selected session{}", count(), if count() == 1 { "" } else { "s" })}</h2>
                    <fieldset>
                        <legend>"Revocation also"</legend>
                        <Flag label="Remove server-side session" value=remove_record/>
                        <Flag label="Revoke tokens" value=revoke_tokens/>
                        <Flag label="Revoke consents" value=revoke_consents/>
                        <Flag label="Send back-channel logout" value=backchannel/>
                    </fieldset>
                    <label>"Only for clients (comma-separated, empty for all)"
                        <input type="text" name="client_scope" prop:value=move || clients.get()
                            on:input=move |ev| clients.set(event_target_value(&ev))/>
                    </label>
                    <label>"Reason"
                        <input type="text" name="reason" maxlength="1000" prop:value=move || reason.get()
                            on:input=move |ev| reason.set(event_target_value(&ev))/>
                    </label>
                    {move || preview.get().map(|p| view! { <p class="notice" aria-live="polite" data-preview>{p}</p> })}
                    {move || error.get().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
                    <div class="actions">
                        <button type="button" on:click=move |_| open.set(false)>"Cancel"</button>
                        <button type="button" disabled=move || run.pending().get()
                            on:click=move |_| { run.dispatch(request(true)); }>"Preview"</button>
                        <button type="button" class="danger" disabled=move || run.pending().get()
                            on:click=move |_| { run.dispatch(request(false)); }>"Confirm"</button>
                    </div>
                </div>
            </div>
        </Show>
    }
}
