//! The clients page: each registered application of a realm, its back-channel logout settings,
//! and a link to its sessions.

use leptos::prelude::*;
use leptos_router::hooks::use_query;
use sessions::SessionFilters;

use crate::components::loaded::Loaded;
use crate::components::realm_picker::RealmPicker;
use crate::format::thousands;
use crate::routes::{ClientsParams, ListParams};
use crate::server_fns::clients::{load_clients, ClientsView};

/// The clients page.
#[component]
pub fn ClientsPage() -> impl IntoView {
    let query = use_query::<ClientsParams>();
    let realm = move || query.with(|q| q.as_ref().ok().and_then(|q| q.realm.clone()));
    let data = Resource::new(realm, load_clients);
    view! {
        <h1>"Clients"</h1>
        <Loaded loading="Loading clients…">
            {move || Suspend::new(async move { data.await.map(|view| view! { <ClientsBody view/> }) })}
        </Loaded>
    }
}

#[component]
fn ClientsBody(view: ClientsView) -> impl IntoView {
    let Some(realm) = view.realm.clone() else {
        return view! { <p class="notice">"No realm exists yet."</p> }.into_any();
    };
    let body = if view.clients.is_empty() {
        view! {
            <p class="notice empty">
                "No client is registered in this realm. Register one with "
                <code>"PUT /api/v1/realms/" {realm.clone()} "/clients/{client_id}"</code> "."
            </p>
        }
        .into_any()
    } else {
        let rows = view
            .clients
            .into_iter()
            .map(|c| {
                let sessions_href = ListParams::filtered(
                    &realm,
                    &SessionFilters {
                        client_id: Some(c.client_id.clone()),
                        ..Default::default()
                    },
                )
                .href();
                view! {
                    <tr>
                        <td><code>{c.client_id.clone()}</code></td>
                        <td>{c.name.clone().unwrap_or_else(|| "—".into())}</td>
                        <td class="ua">{c.backchannel_logout_uri.clone().unwrap_or_else(|| "none".into())}</td>
                        <td>{if c.backchannel_logout_session_required { "yes" } else { "no" }}</td>
                        <td><a href=sessions_href>{format!("{} sessions", thousands(c.session_count))}</a></td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <div class="table-wrap">
                <table class="sessions clients">
                    <thead><tr>
                        <th scope="col">"Client ID"</th><th scope="col">"Name"</th>
                        <th scope="col">"Back-channel logout URI"</th><th scope="col">"Needs sid"</th>
                        <th scope="col">"Sessions"</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    view! {
        <form method="get" action="/clients" class="filters">
            <RealmPicker realms=view.realms current=realm href=Callback::new(|r: String| ClientsParams::href(&r))/>
            <button type="submit" class="primary">"Show"</button>
        </form>
        {body}
    }
    .into_any()
}
