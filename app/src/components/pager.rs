//! "Showing 26–50 of 1,234" and the Previous / Next links.

use leptos::prelude::*;
use sessions::QueryResult;

use crate::format::thousands;
use crate::pages::sessions::ListParams;

/// Position in the listing and links to the neighbouring pages.
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
    let link = |prior: bool| {
        let mut p = params.clone();
        p.results_token = page.results_token.clone();
        p.prior = prior.then_some(true);
        p.href()
    };
    let (prev, next) = (link(true), link(false));
    view! {
        <div class="pager">
            <span class="summary" aria-live="polite">{summary}</span>
            <span class="page-of">{format!("Page {} of {}", thousands(page.current_page), thousands(page.total_pages.max(1)))}</span>
            <a class="button" class:disabled=!page.has_prev aria-disabled=(!page.has_prev).to_string()
                href=move || if page.has_prev { prev.clone() } else { String::new() }>"Previous"</a>
            <a class="button" class:disabled=!page.has_next aria-disabled=(!page.has_next).to_string()
                href=move || if page.has_next { next.clone() } else { String::new() }>"Next"</a>
        </div>
    }
}
