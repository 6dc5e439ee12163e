//! One component per route.

pub mod audit;
pub mod login;
pub mod session_detail;
pub mod sessions;
