-- The device each session's user agent names (`sessions::Device::code`: kind, browser, OS, major
-- version in 32 bits), so that a listing, a count or a removal filters by browser, OS or device
-- type in SQL. NULL without a user agent. Filled for the sessions already stored by the server
-- right after this migration, in the same transaction (user agents are read in Rust).
ALTER TABLE sessions ADD COLUMN device integer;
