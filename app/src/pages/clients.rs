//! The clients page: each registered application of a realm, its back-channel logout settings,
//! and a link to its sessions.

use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use crate::format::thousands;
use crate::pages::login::clean;
use crate::pages::sessions::ListParams;
use crate::server_fns::clients::{load_clients, ClientsView};

/// The clients page.
#[component]
pub fn ClientsPage() -> impl IntoView {
    let query = use_query_map();
    let realm = move || query.with(|q| q.get("realm"));
    let data = Resource::new(realm, load_clients);
    view! {
        <h1>"Clients"</h1>
        <Transition fallback=|| view! { <p class="notice">"Loading clients…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(view) => view! { <ClientsBody view/> }.into_any(),
                    Err(e) => view! { <p class="notice error" role="alert">{clean(&e.to_string())}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ClientsBody(view: ClientsView) -> impl IntoView {
    let Some(realm) = view.realm.clone() else {
        return view! { <p class="notice">"No realm exists yet."</p> }.into_any();
    };
    let options = view
        .realms
        .iter()
        .map(|r| view! { <option value=r.name.clone() selected=r.name == realm>{r.name.clone()}</option> })
        .collect_view();
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
                let sessions_href = ListParams {
                    realm: Some(realm.clone()),
                    client_id: Some(c.client_id.clone()),
                    ..Default::default()
                }
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
        <Form method="GET" action="/clients" attr:class="filters">
            <label>"Realm" <select name="realm">{options}</select></label>
            <button type="submit" class="primary">"Show"</button>
        </Form>
        {body}
    }
    .into_any()
}
