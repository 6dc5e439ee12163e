//! "Showing 26–50 of 1,234" and the Previous / Next links.

use leptos::prelude::*;
use sessions::QueryResult;

use crate::format::thousands;
use crate::routes::ListParams;

/// Position in the listing and links to the neighbouring pages. A page that does not exist is
/// no link at all: nothing to focus, nothing to follow.
#[component]
pub fn Pager(page: QueryResult, params: ListParams) -> impl IntoView {
    let count = u64::from(params.count.unwrap_or(sessions::DEFAULT_PAGE_SIZE));
    let first = (page.current_page.max(1) - 1) * count + 1;
    let shown = page.results.len() as u64;
    let summary = if shown == 0 {
        format!(
            "No sessions on this page of {}",
            thousands(page.total_count)
        )
    } else {
        format!(
            "Showing {}–{} of {}",
            thousands(first),
            thousands(first + shown - 1),
            thousands(page.total_count)
        )
    };
    let link = |label: &'static str, exists: bool, prior: bool| {
        if !exists {
            return view! { <span class="button" aria-disabled="true">{label}</span> }.into_any();
        }
        let href = ListParams {
            results_token: page.results_token.clone(),
            prior: prior.then_some(true),
            ..params.clone()
        }
        .href();
        view! { <a class="button" href=href>{label}</a> }.into_any()
    };
    view! {
        <nav class="pager" aria-label="Pages">
            <span class="summary" aria-live="polite">{summary}</span>
            <span class="page-of">{format!("Page {} of {}", thousands(page.current_page), thousands(page.total_pages.max(1)))}</span>
            {link("Previous", page.has_prev, true)}
            {link("Next", page.has_next, false)}
        </nav>
    }
}
