//! One subject's page: every session, grant and logout delivery of theirs in a realm, and
//! "End all" (the dialog: flags, client scope, reason, preview, confirm).

use std::collections::BTreeSet;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::components::copy_id::CopyId;
use crate::components::end_dialog::{end_action, EndAction, EndDialog, EndNotice, EndTarget};
use crate::components::ended_table::EndedTable;
use crate::components::loaded::Loaded;
use crate::components::session_table::SessionTable;
use crate::format::{exact, relative};
use crate::pages::session_detail::GrantTable;
use crate::routes::{DeliveriesParams, EndedParams, ListParams};
use crate::server_fns::users::{load_user, UserView};

/// The subject's page.
#[component]
pub fn UserPage() -> impl IntoView {
    let params = use_params_map();
    let key = move || {
        params.with(|p| {
            (
                p.get("realm").unwrap_or_default(),
                p.get("subject").unwrap_or_default(),
            )
        })
    };
    let ending = end_action();
    // Asked again after every revocation.
    let data = Resource::new(
        move || (key(), ending.version().get()),
        |((realm, subject), _)| load_user(realm, subject),
    );
    let back = move || {
        ListParams {
            realm: Some(key().0),
            ..Default::default()
        }
        .href()
    };
    view! {
        <p class="crumbs"><a href=back>"← Sessions"</a></p>
        <EndNotice ending/>
        <Loaded loading="Loading…">
            {move || Suspend::new(async move {
                let (realm, subject) = key();
                data.await.map(|view| view! { <UserBody view realm subject ending/> })
            })}
        </Loaded>
    }
}

#[component]
fn UserBody(view: UserView, realm: String, subject: String, ending: EndAction) -> impl IntoView {
    let now = view.now;
    let selected = RwSignal::new(BTreeSet::<String>::new());
    let dialog = RwSignal::new(None::<EndTarget>);
    let total = view.sessions.total_count;
    let shown = view.sessions.results.len() as u64;
    let sessions = if view.sessions.results.is_empty() {
        view! { <p class="muted">"No active session."</p> }.into_any()
    } else {
        view! {
            <SessionTable sessions=view.sessions.results realm=realm.clone() own_sid=view.own_sid selected now
                selectable=view.may_operate/>
            {(shown < total).then(|| view! {
                <p class="muted">{format!("The newest {shown} of {total} sessions.")}</p>
            })}
        }
        .into_any()
    };
    let deliveries = if view.deliveries.is_empty() {
        view! { <p class="muted">"No logout notification about this subject."</p> }.into_any()
    } else {
        let rows = view
            .deliveries
            .into_iter()
            .map(|d| {
                view! {
                    <tr>
                        <td><time datetime=d.created_at.to_rfc3339() title=exact(d.created_at)>{relative(d.created_at, now)}</time></td>
                        <td><code>{d.client_id}</code></td>
                        <td class="sid"><CopyId id=d.sid.clone() what="session ID"/></td>
                        <td>{d.reason.replace('_', " ")}</td>
                        <td><span class=format!("status status-{}", d.status.as_str())>{d.status.as_str()}</span></td>
                        <td class="num">{d.attempts}</td>
                        <td class="error-text" title=d.last_error.clone().unwrap_or_default()>{d.last_error.clone().unwrap_or_else(|| "—".into())}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <div class="table-wrap">
                <table class="sessions deliveries">
                    <thead><tr>
                        <th scope="col">"Queued"</th><th scope="col">"Client"</th><th scope="col">"Session"</th>
                        <th scope="col">"Why"</th><th scope="col">"Status"</th><th scope="col">"Attempts"</th>
                        <th scope="col">"Last error"</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    let scan_note = view.deliveries_scanned.map(|n| {
        view! {
            <p class="muted">
                {format!("Among the realm's newest {n} notifications; ")}
                <a href=DeliveriesParams::href(&realm, None, None)>"all deliveries"</a>"."
            </p>
        }
    });
    let ended_total = view.ended.total_count;
    let ended = if view.ended.results.is_empty() {
        view! { <p class="muted">"No ended session kept for this subject."</p> }.into_any()
    } else {
        let shown = view.ended.results.len() as u64;
        view! {
            <EndedTable entries=view.ended.results now/>
            {(shown < ended_total).then(|| view! {
                <p class="muted">
                    {format!("The newest {shown} of {ended_total}; ")}
                    <a href=EndedParams::of_subject(&realm, &subject)>"every ended session of this subject"</a>"."
                </p>
            })}
        }
        .into_any()
    };
    let subject_for_dialog = subject.clone();
    view! {
        <h1>{subject.clone()} <span class="muted">{format!(" in {realm}")}</span></h1>
        {view.may_operate.then(|| view! {
            <div class="toolbar">
                <button type="button" class="danger"
                    on:click=move |_| dialog.set(Some(EndTarget::Subject(subject_for_dialog.clone())))>
                    "End all"
                </button>
                <span class="muted">"Ends every session of this subject and, with the flags, their tokens, consents and notifies the clients."</span>
            </div>
        })}
        <h2>{format!("Sessions ({total})")}</h2>
        {sessions}
        <h2>{format!("Tokens and consents ({})", view.grants.len())}</h2>
        <GrantTable grants=view.grants now/>
        <h2>{format!("Ended sessions ({ended_total})")}</h2>
        {ended}
        <h2>"Logout notifications"</h2>
        {deliveries}
        {scan_note}
        <EndDialog realm selected target=dialog ending/>
    }
}
