DROP TRIGGER scim_groups_counted_out;
DROP TRIGGER scim_groups_counted_in;
DROP TRIGGER users_counted_out;
DROP TRIGGER users_counted_in;
DROP TABLE resource_counts;
