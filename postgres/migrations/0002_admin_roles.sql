-- What each dashboard administrator may do: 'viewer' reads, 'operator' also revokes, 'admin'
-- does everything. Administrators created before roles existed keep doing everything.
ALTER TABLE admins
    ADD COLUMN role text NOT NULL DEFAULT 'admin'
        CHECK (role IN ('viewer', 'operator', 'admin'));
