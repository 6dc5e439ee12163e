//! Where an address is, as one readable line: the country's flag, city and country, the
//! autonomous system below; and where a session moved to since its sign-in.

use leptos::prelude::*;
use sessions::{Network, Session};

/// A network: flag and place, its autonomous system beneath; "—" when nothing is known.
#[component]
pub fn NetworkLabel(network: Option<Network>) -> impl IntoView {
    let Some(n) = network.filter(|n| !n.is_empty()) else {
        return view! { <span class="muted">"—"</span> }.into_any();
    };
    let place = n.place().unwrap_or_else(|| "Unknown place".into());
    view! {
        <span class="network-label">
            {n.flag().map(|f| view! { <span class="flag" aria-hidden="true">{f}</span> })}
            <span class="place">{place}</span>
            {n.operator().map(|o| view! { <span class="asn">{o}</span> })}
        </span>
    }
    .into_any()
}

/// Whether the session's latest address is not its sign-in's.
pub fn moved(s: &Session) -> bool {
    s.last_ip.is_some() && s.last_ip != s.ip
}

/// A session's sign-in network, and its latest address's when it moved since.
#[component]
pub fn SessionNetwork(session: Session) -> impl IntoView {
    let moved = moved(&session);
    view! {
        <NetworkLabel network=session.network.clone()/>
        {moved.then(|| view! {
            <span class="moved-to" title=format!("Latest address {}", session.last_ip.clone().unwrap_or_default())>
                <span class="visually-hidden">"Latest: "</span>
                "→ "
                <NetworkLabel network=session.last_network.clone()/>
            </span>
        })}
    }
}
