//! The admin dashboard: a Leptos app rendered on the server and hydrated in the browser.
//!
//! - [`server_fns`]: the server functions the dashboard calls, one module per area;
//! - [`pages`]: one component per route; [`components`]: the pieces pages are made of;
//! - [`format`]: how numbers and times are shown.

pub mod components;
pub mod format;
pub mod pages;
pub mod server_fns;
#[cfg(feature = "ssr")]
pub mod state;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

/// The HTML document around the app, rendered on the server, with a Content-Security-Policy
/// that lets only this response's own scripts run.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// Scripts run only from this server or with this response's nonce (the hydration script and
/// streamed data carry it); WebAssembly may compile; nothing may frame the dashboard.
#[cfg(feature = "ssr")]
fn set_content_security_policy() {
    use axum::http::{header, HeaderValue};
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&policy) {
        response.insert_header(header::CONTENT_SECURITY_POLICY, v);
    }
}

/// The dashboard: header, routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/sessions-admin.css"/>
        <Title text="Sessions — admin"/>
        <Router>
            <components::header::Header/>
            <main class="page">
                <Routes fallback=|| view! { <p class="notice error">"Page not found."</p> }>
                    <Route path=path!("/") view=pages::sessions::SessionsPage/>
                    <Route path=path!("/login") view=pages::login::LoginPage/>
                    <Route path=path!("/audit") view=pages::audit::AuditPage/>
                    <Route path=path!("/api-keys") view=pages::api_keys::ApiKeysPage/>
                    <Route path=path!("/clients") view=pages::clients::ClientsPage/>
                    <Route path=path!("/deliveries") view=pages::deliveries::DeliveriesPage/>
                    <Route path=path!("/sessions/:realm/:sid") view=pages::session_detail::SessionDetailPage/>
                </Routes>
            </main>
        </Router>
    }
}
