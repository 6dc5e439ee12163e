//! The sign-in page.

use leptos::form::ActionForm;
use leptos::prelude::*;

use crate::server_fns::auth::SignIn;

/// Username and password; on success the server sets the session cookie and goes to `/`.
#[component]
pub fn LoginPage() -> impl IntoView {
    let sign_in = ServerAction::<SignIn>::new();
    let error = move || match sign_in.value().get() {
        Some(Err(e)) => {
            Some(view! { <p class="notice error" role="alert">{clean(&e.to_string())}</p> })
        }
        _ => None,
    };
    view! {
        <section class="login">
            <h1>"Sign in"</h1>
            <ActionForm action=sign_in attr:class="login-form">
                <label>"Username" <input type="text" name="username" autocomplete="username" required/></label>
                <label>"Password" <input type="password" name="password" autocomplete="current-password" required/></label>
                <button type="submit" class="primary" disabled=move || sign_in.pending().get()>"Sign in"</button>
            </ActionForm>
            {error}
        </section>
    }
}

/// A server function error without its framework prefix.
pub fn clean(message: &str) -> String {
    message
        .trim_start_matches("error running server function: ")
        .to_owned()
}
