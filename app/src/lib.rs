//! The admin dashboard: a Leptos app rendered on the server and hydrated in the browser.
//!
//! - [`server_fns`]: the server functions the dashboard calls, one module per area;
//! - [`pages`]: one component per route; [`components`]: the pieces pages are made of;
//! - [`routes`]: the pages' typed query parameters and links; [`error`]: the one error type;
//! - [`format`]: how numbers and times are shown.

pub mod components;
pub mod error;
pub mod format;
pub mod pages;
pub mod routes;
pub mod server_fns;
#[cfg(feature = "ssr")]
pub mod state;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Outlet, ParentRoute, Redirect, Route, Router, Routes};
use leptos_router::hooks::use_location;
use leptos_router::{path, SsrMode};

use crate::error::AppError;
use crate::server_fns::auth::{current_admin, Admin};

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
            <Dashboard/>
        </Router>
    }
}

/// Who is signed in, with the path the server was asked on: shared by the header and the
/// sign-in gate through context.
#[derive(Clone, Copy)]
pub struct SignedIn(pub Resource<(String, Result<Option<Admin>, AppError>)>);

/// The header and the pages. Every page but sign-in needs a signed-in administrator: a
/// signed-out visit goes to sign-in, which comes back to it afterwards.
#[component]
fn Dashboard() -> impl IntoView {
    let location = use_location();
    // Asked again on every navigation, so signing in or out shows at once.
    let admin = Resource::new(
        move || location.pathname.get(),
        |path| async move { (path, current_admin().await) },
    );
    provide_context(SignedIn(admin));
    view! {
        <components::header::Header/>
        <main class="page">
            <Routes fallback=pages::not_found::NotFoundPage>
                <Route path=path!("/login") view=pages::login::LoginPage/>
                <ParentRoute path=path!("") view=RequireAdmin ssr=SsrMode::Async>
                    <Route path=path!("") view=pages::sessions::SessionsPage/>
                    <Route path=path!("audit") view=pages::audit::AuditPage/>
                    <Route path=path!("api-keys") view=pages::api_keys::ApiKeysPage/>
                    <Route path=path!("admins") view=pages::admins::AdminsPage/>
                    <Route path=path!("overview") view=pages::overview::OverviewPage/>
                    <Route path=path!("realms/:realm/overview") view=pages::overview::OverviewPage/>
                    <Route path=path!("clients") view=pages::clients::ClientsPage/>
                    <Route path=path!("deliveries") view=pages::deliveries::DeliveriesPage/>
                    <Route path=path!("signals") view=pages::streams::StreamsPage/>
                    <Route path=path!("ended") view=pages::ended::EndedPage/>
                    <Route path=path!("sessions/:realm/:sid") view=pages::session_detail::SessionDetailPage/>
                    <Route path=path!("realms/:realm/users/:subject") view=pages::user::UserPage/>
                </ParentRoute>
            </Routes>
        </main>
    }
}

/// The pages behind sign-in. A signed-out visit is sent to sign-in (the server answers it with a
/// 302, as these pages render whole before the answer), which comes back here afterwards.
#[component]
fn RequireAdmin() -> impl IntoView {
    view! {
        <Transition fallback=|| ()>
            <SignInIfSignedOut/>
        </Transition>
        <Outlet/>
    }
}

/// Sends a signed-out visitor to sign-in. Reads who is signed in under the transition, so the
/// server waits for the answer before it answers.
#[component]
fn SignInIfSignedOut() -> impl IntoView {
    let SignedIn(admin) = expect_context();
    let location = use_location();
    // Only an answer for the path on screen counts: never a stale "signed out" right after
    // sign-in.
    let signed_out = Memo::new(move |_| {
        admin.with(|a| matches!(a, Some((path, Ok(None))) if *path == location.pathname.get()))
    });
    let sign_in_href = move || {
        routes::LoginParams::href_back_to(
            &location.pathname.get_untracked(),
            &location.search.get_untracked(),
        )
    };
    move || {
        signed_out
            .get()
            .then(|| view! { <Redirect path=sign_in_href()/> })
    }
}
