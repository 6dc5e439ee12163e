-- The only realms an API key reaches; NULL for every realm. Keys created before keys could be
-- limited keep reaching every realm.
ALTER TABLE api_keys ADD COLUMN realms text[];
