//! The sign-in page.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::use_query;

use crate::routes::{return_path, LoginParams};
use crate::server_fns::auth::SignIn;

/// Username and password; on success the server sets the session cookie and goes back to the
/// page that sent the visitor here (`?next=`, a path of this site), else to `/`.
#[component]
pub fn LoginPage() -> impl IntoView {
    let sign_in = ServerAction::<SignIn>::new();
    let query = use_query::<LoginParams>();
    let next = move || {
        query.with(|q| {
            q.as_ref()
                .ok()
                .and_then(|q| return_path(q.next.as_deref()).map(str::to_owned))
        })
    };
    let error = move || match sign_in.value().get() {
        Some(Err(e)) => Some(view! { <p class="notice error" role="alert">{e.to_string()}</p> }),
        _ => None,
    };
    view! {
        <section class="login">
            <h1>"Sign in"</h1>
            <ActionForm action=sign_in attr:class="login-form">
                <label>"Username" <input type="text" name="username" autocomplete="username" required/></label>
                <label>"Password" <input type="password" name="password" autocomplete="current-password" required/></label>
                {move || next().map(|next| view! { <input type="hidden" name="next" value=next/> })}
                <button type="submit" class="primary" disabled=move || sign_in.pending().get()>"Sign in"</button>
            </ActionForm>
            {error}
        </section>
    }
}
