//! The administrators page (role admin): who may sign in to the dashboard and with which role.
//! Add one, disable or enable, set a new password, change the role. The service refuses what
//! would leave no enabled admin.

use leptos::form::ActionForm;
use leptos::prelude::*;
use sessions::{AdminRole, Permission};

use crate::components::loaded::Loaded;
use crate::components::permitted::Permitted;
use crate::error::AppError;
use crate::format::exact;
use crate::server_fns::admins::{
    load_admins, AdminRow, CreateAdmin, ResetAdminPassword, SetAdminDisabled, SetAdminRole,
};

/// What each role may do, as the page explains it.
fn role_hint(role: AdminRole) -> &'static str {
    match role {
        AdminRole::Viewer => "reads everything, changes nothing",
        AdminRole::Operator => "also ends sessions, revokes grants, retries deliveries",
        AdminRole::Admin => "everything, administrators, API keys and settings included",
    }
}

/// The legend of the roles.
fn role_hints() -> impl IntoView {
    AdminRole::ALL
        .into_iter()
        .map(|r| view! { <li><strong>{r.as_str()}</strong> ": " {role_hint(r)}</li> })
        .collect_view()
}

/// The role picker of a form, with `current` chosen.
fn role_options(current: AdminRole) -> impl IntoView {
    AdminRole::ALL
        .into_iter()
        .map(|r| view! { <option value=r.as_str() selected=r == current>{r.as_str()}</option> })
        .collect_view()
}

/// The outcome of the change made last on the page, and the versions of the page's actions when
/// it was read.
#[derive(Clone, PartialEq)]
struct LastChange {
    versions: [usize; 4],
    outcome: Option<Result<String, AppError>>,
}

/// The administrators page.
#[component]
pub fn AdminsPage() -> impl IntoView {
    let create = ServerAction::<CreateAdmin>::new();
    let disable = ServerAction::<SetAdminDisabled>::new();
    let password = ServerAction::<ResetAdminPassword>::new();
    let role = ServerAction::<SetAdminRole>::new();
    let admins = Resource::new(
        move || {
            (
                create.version().get(),
                disable.version().get(),
                password.version().get(),
                role.version().get(),
            )
        },
        |_| load_admins(),
    );
    // The outcome of the change made last, whichever form made it: the action whose version
    // moved since the memo last ran.
    let last = Memo::new(move |prev: Option<&LastChange>| {
        let versions = [
            create.version().get(),
            disable.version().get(),
            password.version().get(),
            role.version().get(),
        ];
        let outcomes = [
            create.value(),
            disable.value(),
            password.value(),
            role.value(),
        ];
        let moved = prev.and_then(|p| (0..versions.len()).find(|&i| versions[i] != p.versions[i]));
        let outcome = match moved {
            Some(i) => outcomes[i].get(),
            None => prev.and_then(|p| p.outcome.clone()),
        };
        LastChange { versions, outcome }
    });
    let notice = move || {
        last.get().outcome.map(|outcome| match outcome {
            Ok(message) => view! { <p class="notice ok" role="status">{message}</p> }.into_any(),
            Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    };
    view! {
        <h1>"Administrators"</h1>
        // The legend and the form only for those who may use them; the list says why to others.
        <Permitted permission=Permission::Administer>
            <ul class="hint roles">{role_hints()}</ul>
            <ActionForm action=create attr:class="filters create-admin">
                <label>"Username" <input type="text" name="username" required maxlength="255" autocomplete="off"/></label>
                <label>"Password" <input type="password" name="password" required minlength="10" autocomplete="new-password"/></label>
                <label>"Role" <select name="role">{role_options(AdminRole::Viewer)}</select></label>
                <button type="submit" class="primary" disabled=move || create.pending().get()>"Add administrator"</button>
            </ActionForm>
        </Permitted>
        {notice}
        <Loaded loading="Loading administrators…">
            {move || Suspend::new(async move {
                admins.await.map(|view| view! {
                    <AdminTable rows=view.admins me=view.me disable password role/>
                })
            })}
        </Loaded>
    }
}

/// One row per administrator, each with its forms.
#[component]
fn AdminTable(
    rows: Vec<AdminRow>,
    me: String,
    disable: ServerAction<SetAdminDisabled>,
    password: ServerAction<ResetAdminPassword>,
    role: ServerAction<SetAdminRole>,
) -> impl IntoView {
    let rows = rows
        .into_iter()
        .map(|a| {
            let name = a.username;
            let toggle = if a.disabled { "Enable" } else { "Disable" };
            let you = (name == me).then(|| view! { <span class="badge">"you"</span> });
            let (role_label, toggle_label) = (format!("Role of {name}"), format!("{toggle} {name}"));
            let (password_label, set_label) = (
                format!("New password for {name}"),
                format!("Set password of {name}"),
            );
            let (n1, n2, n3) = (name.clone(), name.clone(), name.clone());
            view! {
                <tr data-admin=name.clone() class:disabled=a.disabled>
                    <td>
                        <code>{name.clone()}</code>
                        {you}
                    </td>
                    <td>
                        <ActionForm action=role attr:class="inline">
                            <input type="hidden" name="username" value=n1.clone()/>
                            <select name="role" aria-label=role_label.clone()>{role_options(a.role)}</select>
                            <button type="submit">"Change role"</button>
                        </ActionForm>
                    </td>
                    <td>{exact(a.created_at)}</td>
                    <td>
                        <span class=if a.disabled { "status status-failed" } else { "status status-delivered" }>
                            {if a.disabled { "disabled" } else { "enabled" }}
                        </span>
                    </td>
                    <td>
                        <ActionForm action=disable attr:class="inline">
                            <input type="hidden" name="username" value=n2.clone()/>
                            <input type="hidden" name="disabled" value=(!a.disabled).to_string()/>
                            <button type="submit" class=if a.disabled { "" } else { "outline-danger" }
                                aria-label=toggle_label.clone()>{toggle}</button>
                        </ActionForm>
                    </td>
                    <td>
                        <ActionForm action=password attr:class="inline">
                            <input type="hidden" name="username" value=n3.clone()/>
                            <input type="password" name="password" required minlength="10" autocomplete="new-password"
                                placeholder="New password" aria-label=password_label.clone()/>
                            <button type="submit" aria-label=set_label.clone()>"Set password"</button>
                        </ActionForm>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="sessions admins">
                <thead><tr>
                    <th scope="col">"Username"</th><th scope="col">"Role"</th>
                    <th scope="col">"Created"</th><th scope="col">"Status"</th>
                    <th scope="col"></th><th scope="col">"Password"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}
