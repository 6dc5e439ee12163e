//! The service's operations, one module per concept, each an `impl SessionService` block.

pub mod admins;
pub mod audit;
pub mod clients;
pub mod deliveries;
pub mod export;
pub mod grants;
pub mod keys;
pub mod overview;
pub mod realms;
pub mod sessions;
pub mod users;
