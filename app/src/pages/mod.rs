//! One component per route.

pub mod admins;
pub mod api_keys;
pub mod audit;
pub mod clients;
pub mod deliveries;
pub mod ended;
pub mod login;
pub mod not_found;
pub mod overview;
pub mod session_detail;
pub mod sessions;
pub mod streams;
pub mod user;
