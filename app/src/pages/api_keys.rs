//! The API keys page: the keys automation and identity providers use, created and revoked while
//! the server runs.

use leptos::form::ActionForm;
use leptos::prelude::*;
use sessions::Permission;

use crate::components::loaded::Loaded;
use crate::components::permitted::Permitted;
use crate::format::exact;
use crate::server_fns::api_keys::{load_api_keys, ApiKeyRow, CreateApiKey, RevokeApiKey};

/// The API keys page.
#[component]
pub fn ApiKeysPage() -> impl IntoView {
    let create = ServerAction::<CreateApiKey>::new();
    let revoke = ServerAction::<RevokeApiKey>::new();
    let keys = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| load_api_keys(),
    );
    let created = move || {
        match create.value().get() {
        Some(Ok(k)) => Some(view! {
            <div class="notice ok" role="status">
                <p>"Created API key " <strong>{k.name}</strong> ". Copy it now: it is not shown again."</p>
                <p><code class="secret">{k.secret}</code></p>
            </div>
        }.into_any()),
        Some(Err(e)) => Some(view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any()),
        None => None,
    }
    };
    let revoked = move || match revoke.value().get() {
        Some(Err(e)) => Some(view! { <p class="notice error" role="alert">{e.to_string()}</p> }),
        _ => None,
    };
    view! {
        <h1>"API keys"</h1>
        <p class="hint">
            "Send a key as " <code>"Authorization: Bearer <key>"</code> ". "
            <code>"sessions:issue"</code> " is the identity provider's data plane; "
            <code>"sessions:admin"</code> " is administration; " <code>"sessions:read"</code>
            " reads administration's pages' data and changes nothing; " <code>"ssf:receiver"</code>
            " is a Shared Signals receiver, which manages its one stream (see " <a href="/signals">"Signals"</a>
            "). Only a hash of each key is stored. "
            "A key limited to some realms is refused in every other realm; leave Realms empty for all realms."
        </p>
        <Permitted permission=Permission::Administer>
            <ActionForm action=create attr:class="filters create-key">
                <label>"Name" <input type="text" name="name" required maxlength="255"/></label>
                <label class="check"><input type="checkbox" name="issue" value="on" checked/> "sessions:issue"</label>
                <label class="check"><input type="checkbox" name="admin" value="on"/> "sessions:admin"</label>
                <label class="check"><input type="checkbox" name="read" value="on"/> "sessions:read"</label>
                <label class="check" title="Manages its one Shared Signals stream and polls it">
                    <input type="checkbox" name="receiver" value="on"/> "ssf:receiver (Shared Signals receiver)"
                </label>
                <label>"Realms"
                    <input type="text" name="realms" placeholder="all realms" title="Comma-separated realms; empty for every realm" maxlength="4096"/>
                </label>
                <button type="submit" class="primary" disabled=move || create.pending().get()>"Create key"</button>
            </ActionForm>
        </Permitted>
        {created}
        {revoked}
        <Loaded loading="Loading keys…">
            {move || Suspend::new(async move {
                keys.await.map(|rows| view! { <KeyTable rows revoke/> })
            })}
        </Loaded>
    }
}

#[component]
fn KeyTable(rows: Vec<ApiKeyRow>, revoke: ServerAction<RevokeApiKey>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="notice empty">"No API key exists."</p> }.into_any();
    }
    let rows = rows
        .into_iter()
        .map(|k| {
            let name = k.name.clone();
            view! {
                <tr>
                    <td><code>{k.name.clone()}</code></td>
                    <td>{k.scopes.join(", ")}</td>
                    <td>{match k.realms {
                        Some(realms) => realms.join(", "),
                        None => "all realms".to_owned(),
                    }}</td>
                    <td>{exact(k.created_at)}</td>
                    <td>
                        <ActionForm action=revoke>
                            <input type="hidden" name="name" value=name.clone()/>
                            <button type="submit" class="outline-danger" aria-label=format!("Revoke {name}")>"Revoke"</button>
                        </ActionForm>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="sessions api-keys">
                <thead><tr>
                    <th scope="col">"Name"</th><th scope="col">"Scopes"</th>
                    <th scope="col">"Realms"</th><th scope="col">"Created"</th><th scope="col"></th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}
