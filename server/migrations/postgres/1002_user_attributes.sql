-- Optional attributes of users: their manager (a user of the tenant) and e-mail.
ALTER TABLE auth_users ADD COLUMN manager TEXT;
ALTER TABLE auth_users ADD COLUMN email TEXT;
