//! The page of a URL the dashboard does not have.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_location;

/// "Page not found" with the path asked for and a link back to the sessions; the server answers
/// it with status 404.
#[component]
pub fn NotFoundPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    let path = use_location().pathname;
    view! {
        <Title text="Page not found — Sessions admin"/>
        <h1>"Page not found"</h1>
        <div class="notice not-found">
            <p>"The dashboard has no page at " <code>{move || path.get()}</code> "."</p>
            <p><a href="/">"Back to the sessions"</a></p>
        </div>
    }
}
