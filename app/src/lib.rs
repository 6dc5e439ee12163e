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

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
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
                    <Route path=path!("/clients") view=pages::clients::ClientsPage/>
                    <Route path=path!("/deliveries") view=pages::deliveries::DeliveriesPage/>
                    <Route path=path!("/sessions/:realm/:sid") view=pages::session_detail::SessionDetailPage/>
                </Routes>
            </main>
        </Router>
    }
}
