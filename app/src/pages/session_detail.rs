//! One session on its own page: every field, properties, clients, and an end button.

use std::collections::BTreeSet;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::components::end_dialog::{end_action, EndAction, EndDialog, EndNotice, EndTarget};
use crate::components::loaded::Loaded;
use crate::error::AppError;
use crate::format::{exact, relative};
use crate::routes::ListParams;
use crate::server_fns::sessions::{load_session, load_session_grants, SessionDetail};

/// The session page.
#[component]
pub fn SessionDetailPage() -> impl IntoView {
    let params = use_params_map();
    let key = move || {
        params.with(|p| {
            (
                p.get("realm").unwrap_or_default(),
                p.get("sid").unwrap_or_default(),
            )
        })
    };
    let data = Resource::new(key, |(realm, sid)| load_session(realm, sid));
    let ending = end_action();
    // Asked again after a revocation, which may have taken some of them.
    let grants = Resource::new(
        move || (key(), ending.version().get()),
        |((realm, sid), _)| load_session_grants(realm, sid),
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
        <Loaded loading="Loading session…">
            {move || Suspend::new(async move {
                data.await.map(|detail| view! { <Detail detail realm=key().0 ending grants/> })
            })}
        </Loaded>
    }
}

#[component]
fn Detail(
    detail: SessionDetail,
    realm: String,
    ending: EndAction,
    grants: Resource<Result<Vec<sessions::Grant>, AppError>>,
) -> impl IntoView {
    let s = detail.session;
    let now = detail.now;
    let when =
        move |t: chrono::DateTime<chrono::Utc>| format!("{} ({})", exact(t), relative(t, now));
    let selected = RwSignal::new(BTreeSet::from([s.sid.clone()]));
    let dialog = RwSignal::new(None::<EndTarget>);
    let gone = move || {
        ending
            .value()
            .with(|r| matches!(r, Some(Ok(o)) if o.records_deleted > 0))
    };
    let properties = if s.properties.is_empty() {
        view! { <p class="muted">"No properties."</p> }.into_any()
    } else {
        let rows = s
            .properties
            .iter()
            .map(|(k, v)| view! { <tr><th scope="row"><code>{k.clone()}</code></th><td>{v.clone()}</td></tr> })
            .collect_view();
        view! { <table class="props"><tbody>{rows}</tbody></table> }.into_any()
    };
    let place = |n: &Option<sessions::Network>| {
        n.as_ref().filter(|n| !n.is_empty()).map(|n| {
            let parts: Vec<String> = [
                n.flag().zip(n.place()).map(|(f, p)| format!("{f} {p}")),
                n.operator(),
            ]
            .into_iter()
            .flatten()
            .collect();
            parts.join(" · ")
        })
    };
    let mut fields = vec![
        ("Session ID", s.sid.clone()),
        ("Realm", s.realm.clone()),
        ("Subject", s.subject_id.clone()),
        (
            "Display name",
            s.display_name.clone().unwrap_or_else(|| "—".into()),
        ),
        ("Created", when(s.created_at)),
        ("Last access", when(s.last_access_at)),
        ("Idle expiry", when(s.idle_expires_at)),
        ("Absolute expiry", when(s.expires_at)),
        ("IP", s.ip.clone().unwrap_or_else(|| "—".into())),
    ];
    fields.extend(place(&s.network).map(|p| ("Network", p)));
    if crate::components::network::moved(&s) {
        fields.push(("Latest IP", s.last_ip.clone().unwrap_or_default()));
        fields.extend(place(&s.last_network).map(|p| ("Latest network", p)));
    }
    fields.extend([
        ("Device", s.device.map_or_else(|| "—".into(), |d| d.label())),
        (
            "User agent",
            s.user_agent.clone().unwrap_or_else(|| "—".into()),
        ),
    ]);
    let title = s
        .display_name
        .clone()
        .unwrap_or_else(|| s.subject_id.clone());
    view! {
        <h1>
            {title} {detail.own.then(|| view! { <span class="badge">"this session"</span> })}
            {move || gone().then(|| view! { <span class="badge ended">"ended"</span> })}
        </h1>
        {detail.may_operate.then(|| view! {
            <div class="toolbar">
                <button type="button" class="danger" disabled=move || detail.own || gone()
                    on:click=move |_| dialog.set(Some(EndTarget::Selected))>"End this session"</button>
            </div>
        })}
        <div class="detail">
            <dl>
                {fields.into_iter().map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> }).collect_view()}
                <dt>"Clients"</dt>
                <dd>{s.client_ids.iter().map(|c| view! { <span class="chip">{c.clone()}</span> }).collect_view()}</dd>
            </dl>
            <h2>"Properties"</h2>
            {properties}
            <h2>"Tokens and consents"</h2>
            <Loaded loading="Loading…">
                {move || Suspend::new(async move {
                    grants.await.map(|list| view! { <GrantTable grants=list now/> })
                })}
            </Loaded>
        </div>
        <EndDialog realm selected target=dialog ending/>
    }
    .into_any()
}

/// Live grants (of a session, or of a subject).
#[component]
pub fn GrantTable(
    grants: Vec<sessions::Grant>,
    now: chrono::DateTime<chrono::Utc>,
) -> impl IntoView {
    if grants.is_empty() {
        return view! { <p class="muted">"No live token or consent."</p> }.into_any();
    }
    let rows = grants
        .into_iter()
        .map(|g| {
            view! {
                <tr>
                    <td>{g.kind.as_str().replace('_', " ")}</td>
                    <td><code>{g.client_id}</code></td>
                    <td>{g.scopes.join(" ")}</td>
                    <td title=exact(g.created_at)>{relative(g.created_at, now)}</td>
                    <td title=exact(g.expires_at)>{relative(g.expires_at, now)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="grants">
            <thead><tr>
                <th scope="col">"Kind"</th><th scope="col">"Client"</th><th scope="col">"Scopes"</th>
                <th scope="col">"Issued"</th><th scope="col">"Expires"</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
