-- A statement that fires a trigger (or has a RETURNING clause, which SQLite runs as one) may
-- write more than one b-tree, so inside a transaction SQLite gives it a statement journal: a
-- copy of every page it changes, to undo that statement alone on an error. A create paid it on
-- the users insert (`users_counted_in`), the event's insert (`events_numbered`) and the audit
-- entry's (`audit_log_numbered`): together with the write's savepoints, about 70,000
-- instructions of the 690,000 a create cost (bench/instructions.sh create).
--
-- The write path now does their work itself, in the same transaction: `db::sqlite::write`
-- counts a new user in `resource_counts`, and `db::records` numbers every event and audit
-- entry in its insert (the triggers numbered only a tenant's first, where MAX was NULL). No
-- other statement inserts users, events or audit entries on SQLite. Removing and hiding users
-- keep their triggers (`users_counted_out`, `users_counted_hidden`): those writes are rare.
DROP TRIGGER users_counted_in;
DROP TRIGGER events_numbered;
DROP TRIGGER audit_log_numbered;
