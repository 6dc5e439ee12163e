-- Realms are never deleted, and every write reads its realm first (unknown realms are refused
-- before anything is inserted). The foreign keys of the busy tables only made every insert lock
-- its realm's row (`FOR KEY SHARE`: a WAL record each, and a multixact as soon as two inserts
-- overlap, which every create load does), so they go. `clients` keeps its key (rare writes).
ALTER TABLE sessions DROP CONSTRAINT IF EXISTS sessions_realm_fkey;
ALTER TABLE grants DROP CONSTRAINT IF EXISTS grants_realm_fkey;
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_realm_fkey;
